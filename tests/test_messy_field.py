"""A field in messy real-world formats, analysed end to end through the command line.

Like a cadastre forwarded by email: a zipped Latin-1 Shapefile with short field names in
Arc 1950 / UTM 36S, a bow-tie licence, activity rasters in lon/lat degrees with cloud
holes and speckle, and a missing production row. With ``--field`` mappings every
planted discrepancy is flagged, in the right place, and nothing else.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import Geod
from rasterio.warp import Resampling, calculate_default_transform, reproject

from tests.conftest import YEARS, field_concessions, write_field
from tests.test_cli import run_app

GEOD = Geod(ellps="WGS84")


def messy_copy(clean: dict, folder):
    """Rewrite the small field (conftest) the messy way; return paths and the pit position."""
    folder.mkdir()
    concessions = field_concessions().rename(
        columns={"concession_id": "CONC_NO", "holder": "TITULAR", "status": "ESTADO", "expires": "EXP_DATE"}
    )
    concessions["TITULAR"] = concessions["TITULAR"].str.replace("Alpha Gems", "Mineração Fictícia")
    concessions["ESTADO"] = concessions["ESTADO"].str.upper()
    x0, y0, x1, y1 = concessions.geometry.iloc[4].bounds  # E: production without activity
    concessions.loc[4, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # bow-tie
    shp = folder / "cadastre.shp"
    pyogrio.write_dataframe(concessions.drop(columns=["granted"]), shp, encoding="ISO-8859-1")
    archive = folder / "cadastre.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in folder.glob("cadastre.*"):
            if part.suffix != ".zip":
                bundle.write(part, part.name)
    activity = folder / "activity_deg"
    activity.mkdir()
    rng = np.random.default_rng(5)
    for year in YEARS:
        with rasterio.open(clean["activity"] / f"{year}.tif") as src:
            transform, width, height = calculate_default_transform(
                src.crs, "EPSG:4326", src.width, src.height, *src.bounds, resolution=0.0001
            )
            score = np.full((height, width), np.nan, np.float32)
            reproject(rasterio.band(src, 1), score, dst_transform=transform, dst_crs="EPSG:4326",
                      resampling=Resampling.nearest, dst_nodata=np.nan)  # fmt: skip
        quiet = np.nan_to_num(score) == 0
        speckle = (rng.random(score.shape) < 0.004) & quiet
        score[speckle] = 0.8
        score[5:25, 5:40] = np.nan  # a cloud hole over empty ground
        profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:4326",
                       transform=transform, nodata=np.nan)  # fmt: skip
        with rasterio.open(activity / f"{year}.tif", "w", **profile) as out:
            out.write(score, 1)
    production = pd.read_csv(clean["production"], dtype=str)
    production = production[~((production["concession_id"] == "A") & (production["period"] == "2020"))]
    production = production.rename(columns={"concession_id": "LIC", "carats": "Carats (ct)"})
    production.to_csv(folder / "prod.csv", index=False)
    return {"concessions": archive, "production": folder / "prod.csv", "activity": activity,
            "national": clean["national"]}  # fmt: skip


@pytest.fixture(scope="module")
def messy_result(tmp_path_factory):
    base = tmp_path_factory.mktemp("messy")
    paths = messy_copy(write_field(base / "clean"), base / "messy")
    out = base / "out"
    result = run_app(
        "analyze",
        "--concessions", str(paths["concessions"]),
        "--production", str(paths["production"]),
        "--activity", str(paths["activity"]),
        "--national", str(paths["national"]),
        "--out", str(out),
        "--field", "concession_id=CONC_NO",
        "--field", "holder=TITULAR",
        "--field", "status=ESTADO",
        "--field", "expires=EXP_DATE",
        "--field", "production:concession_id=LIC",
        "--field", "production:carats=Carats (ct)",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, pyogrio.read_dataframe(out / "flags.geojson"), out


def test_every_planted_flag_and_nothing_else(messy_result):
    _, flags, _ = messy_result
    found = set(zip(flags["flag_type"], flags["concession_id"].fillna("-"), flags["period"], strict=True))
    expected = {("activity_without_production", "B", y) for y in YEARS}
    expected |= {("activity_without_production", "A", "2020")}  # the missing row
    expected |= {("activity_in_inactive_licence", "C", y) for y in YEARS}
    expected |= {("activity_in_inactive_licence", "D", y) for y in YEARS[1:]}
    expected |= {("production_without_activity", "E", y) for y in YEARS}
    expected |= {("unlicensed_activity", "-", y) for y in YEARS}
    expected |= {("licence_overlap", "F", YEARS[0])}
    expected |= {("national_total_mismatch", "-", y) for y in ("2020", "2021")}  # 2020 lost A's row
    assert found == expected


def test_flags_are_where_the_digging_is(messy_result):
    _, flags, _ = messy_result
    concessions = field_concessions().to_crs(32736)
    centres = dict(zip(concessions["concession_id"], concessions.geometry.centroid.to_crs(4326), strict=True))
    for concession_id in ("B", "C", "D"):
        rows = flags[(flags["concession_id"] == concession_id) & (flags["flag_type"] != "licence_overlap")]
        for geom in rows.geometry:
            centre = shapely.centroid(geom)
            distance = GEOD.inv(centre.x, centre.y, centres[concession_id].x, centres[concession_id].y)[2]
            assert distance < 30, (concession_id, distance)
    west, south = concessions.total_bounds[:2]
    pit = rasterio.warp.transform("EPSG:32736", "EPSG:4326", [west - 300], [south - 300])
    for geom in flags.loc[flags["flag_type"] == "unlicensed_activity", "geometry"]:
        centre = shapely.centroid(geom)
        assert GEOD.inv(centre.x, centre.y, pit[0][0], pit[1][0])[2] < 30


def test_repairs_and_encoding_reported(messy_result):
    result, flags, out = messy_result
    assert "feature 5 (E): invalid" in result.stderr and "repaired" in result.stderr
    stats = pd.read_csv(out / "concession_stats.csv")
    assert "Mineração Fictícia (fictional)" in set(stats["holder"])
