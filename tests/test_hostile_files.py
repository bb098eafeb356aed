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


def _zip(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../../evil.shp", b"x", 0)], "points outside the archive"),
        ([("/etc/evil.shp", b"x", 0)], "points outside the archive"),
        ([("c.shp", b"/etc/passwd", 0o120777)], "symbolic link"),
        ([("c.shp", b"\0" * 20_000_000, 0)], "zip bomb"),
    ],
)
def test_hostile_zips_are_refused_before_gdal_reads_them(tmp_path, members, message):
    path = _zip(tmp_path / "cadastre.zip", members)
    assert path.stat().st_size < 100_000  # small on disk
    with pytest.raises(InputError, match=message):
        read_concessions(path)
