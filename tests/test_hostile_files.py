"""Hostile files: GDAL virtual datasets in disguise are refused unread, with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from geo.errors import InputError
from layers.activity import find_activity_rasters
from layers.concessions import read_concessions
from tests.conftest import write_raster

SECRET = "/etc/passwd"


def raster_vrt(source: str) -> str:
    return (
        '<VRTDataset rasterXSize="4" rasterYSize="4"><SRS>EPSG:32736</SRS>'
        "<GeoTransform>0, 10, 0, 0, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )


def test_vrt_disguised_as_tif_is_refused(tmp_path):
    folder = tmp_path / "activity"
    folder.mkdir()
    write_raster(folder / "2020.tif", np.zeros((4, 4), np.float32), from_origin(0, 0, 10, 10), "EPSG:32736")
    (folder / "2021.tif").write_text(raster_vrt(SECRET))
    with pytest.raises(InputError, match=r"2021\.tif: is a GDAL virtual dataset"):
        find_activity_rasters(folder)


def test_vrt_with_xml_declaration_and_other_case_is_refused(tmp_path):
    folder = tmp_path / "activity"
    folder.mkdir()
    (folder / "2021.tif").write_text(
        '<?xml version="1.0"?>\n  ' + raster_vrt(SECRET).replace("VRTDataset", "vrtdataset")
    )
    with pytest.raises(InputError, match="virtual dataset"):
        find_activity_rasters(folder)


def test_ogr_vrt_disguised_as_geojson_is_refused(tmp_path):
    path = tmp_path / "concessions.geojson"
    path.write_text(
        '<OGRVRTDataSource><OGRVRTLayer name="c"><SrcDataSource>/etc/passwd</SrcDataSource></OGRVRTLayer>'
        "</OGRVRTDataSource>"
    )
    with pytest.raises(InputError, match="concessions.geojson: is a GDAL virtual dataset"):
        read_concessions(path)
