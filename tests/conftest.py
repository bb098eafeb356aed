"""Small data made in fixtures: boxes of known area with a CRS, tiny rasters on disk.

``small_field`` builds a four-year field in Arc 1950 / UTM 36S (concessions) and
WGS 84 / UTM 36S (rasters) with one clear case of most flag types and a clean licence:

=====  ===========  ==================================================================
id     status       story
=====  ===========  ==================================================================
A      active       digs a growing pit and reports consistent carats: no flag
B      active       digs 7 ha and reports nothing: activity_without_production
C      application  digs 3 ha: activity_in_inactive_licence
D      expired      expires 2018-12-31, digs 3 ha every year: inactive from 2019
E      active       reports carats, nothing seen: production_without_activity
F, G   active       overlap by 18 ha, no activity, report nothing: licence_overlap
(out)  -            a 2.5 ha pit outside every licence: unlicensed_activity
=====  ===========  ==================================================================
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

FIELD_X0, FIELD_Y0 = 400_000.0, 7_830_000.0  # Arc 1950 / UTM 36S, near Marange
YEARS = ("2018", "2019", "2020", "2021")


def write_raster(path: Path, array: np.ndarray, transform, crs: str, nodata=None, **tags) -> Path:
    """Write a single-band tiled GeoTIFF and return its path."""
    profile = dict(
        driver="GTiff",
        height=array.shape[0],
        width=array.shape[1],
        count=1,
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
    )
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array, 1)
        if tags:
            dataset.update_tags(**tags)
    return path


def damage_tiles(path: Path) -> None:
    """Overwrite the first half of a GeoTIFF GDAL wrote, after its 64-byte start, with junk: its directory (at the
    end) stays whole, so the file opens and describes, but its compressed tiles cannot be read."""
    data = bytearray(path.read_bytes())
    junk = len(data) // 2 - 64
    data[64 : 64 + junk] = (bytes(range(256)) * (junk // 256 + 1))[:junk]
    path.write_bytes(data)


def field_concessions() -> gpd.GeoDataFrame:
    x, y = FIELD_X0, FIELD_Y0
    boxes = {
        "A": shapely.box(x, y, x + 2000, y + 2000),
        "B": shapely.box(x + 2100, y, x + 4000, y + 2000),
        "C": shapely.box(x, y + 2100, x + 2000, y + 4000),
        "D": shapely.box(x + 2100, y + 2100, x + 4000, y + 4000),
        "E": shapely.box(x + 4100, y, x + 5000, y + 1000),
        "F": shapely.box(x + 4100, y + 2100, x + 5000, y + 3000),
        "G": shapely.box(x + 4800, y + 2100, x + 5800, y + 3000),
    }
    frame = pd.DataFrame(
        {
            "concession_id": list(boxes),
            "holder": ["Alpha Gems (fictional)", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta"],
            "status": ["active", "active", "application", "expired", "active", "active", "active"],
            "mineral": ["diamond"] * 7,
            "granted": ["2010-01-01"] * 7,
            "expires": [None, None, None, "2018-12-31", None, None, None],
        }
    )
    return gpd.GeoDataFrame(frame, geometry=list(boxes.values()), crs="EPSG:20936")


def analyse_field(paths: dict[str, Path], settings=None, concessions=None, production=None, executor=None):
    """``run_analysis`` of a field :func:`write_field` wrote (its concessions or production replaced if given)."""
    from geo.analysis import run_analysis
    from geo.settings import Settings
    from layers.activity import find_activity_rasters
    from layers.concessions import read_concessions
    from layers.tables import read_national, read_production

    return run_analysis(
        concessions if concessions is not None else read_concessions(paths["concessions"]).table,
        production if production is not None else read_production(paths["production"]).table,
        read_national(paths["national"]).table,
        find_activity_rasters(paths["activity"]),
        settings or Settings(),
        executor=executor,
    )


def write_field(folder: Path, pit_growth_m: float = 20.0) -> dict[str, Path]:
    """Write the small field's files into ``folder``; return their paths by layer."""
    folder.mkdir(parents=True, exist_ok=True)
    concessions = field_concessions()
    concessions.to_file(folder / "concessions.gpkg", layer="concessions")
    in_raster = concessions.to_crs("EPSG:32736")
    west, south, east, north = in_raster.total_bounds
    transform = from_origin(west - 600, north + 600, 10, 10)
    height, width = int((north - south + 1200) / 10), int((east - west + 1200) / 10)
    rows, cols = np.ogrid[:height, :width]
    centres = dict(zip(in_raster["concession_id"], in_raster.geometry.centroid, strict=True))
    activity = folder / "activity"
    activity.mkdir(exist_ok=True)
    for k, year in enumerate(YEARS):
        score = np.zeros((height, width), np.float32)
        pits = [
            (centres["A"].x, centres["A"].y, 200 + pit_growth_m * k),
            (centres["B"].x, centres["B"].y, 150),
            (centres["C"].x, centres["C"].y, 100),
            (centres["D"].x, centres["D"].y, 100),
            (west - 300, south - 300, 90),  # outside every licence
        ]
        for x, y, radius_m in pits:
            col, row = ~transform @ (x, y)
            score[(rows - row) ** 2 + (cols - col) ** 2 < (radius_m / 10) ** 2] = 0.9
        write_raster(activity / f"{year}.tif", score, transform, "EPSG:32736", nodata=-9999.0)
    production = pd.DataFrame(
        {
            "concession_id": ["A"] * 4 + ["E"] * 4,
            "period": list(YEARS) * 2,
            "carats": ["12,500", "15,000", "18,000", "21,000", "9,000", "9,000", "9,000", "9,000"],
            "source": "synthetic test field",
        }
    )
    production.to_csv(folder / "production.csv", index=False)
    national = pd.DataFrame({"country": "Zimbabwe", "period": list(YEARS), "carats": [21500, 24000, 27000, 90000]})
    national.to_csv(folder / "national.csv", index=False)
    return {
        "concessions": folder / "concessions.gpkg",
        "production": folder / "production.csv",
        "national": folder / "national.csv",
        "activity": activity,
    }


@pytest.fixture
def small_field(tmp_path) -> dict[str, Path]:
    """Paths of the small field's input files (see the module docstring)."""
    return write_field(tmp_path / "field")
