"""layers.concessions: every vector format, CRS rules, field names, values and the geometry zoo.

Data: boxes of known area in Arc 1950 / UTM 36S (EPSG:20936), written in each format with
pyogrio or geopandas into ``tmp_path``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from geo.errors import CRSError, InputError
from layers.concessions import read_concessions, repair_geometries
from layers.fields import parse_field_mappings

X0, Y0 = 400_000.0, 7_900_000.0  # EPSG:20936, near Marange
ACCENTED = "Sociedade Mineração Fictícia"


def square(dx: float, dy: float, side: float) -> Polygon:
    """A counter-clockwise square of ``side`` metres, ``dx``/``dy`` metres from the origin."""
    return shapely.box(X0 + dx, Y0 + dy, X0 + dx + side, Y0 + dy + side)


def frame(geometries, crs="EPSG:20936", **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=list(geometries), crs=crs)


def write(table: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    """Write ``table`` in the format its suffix names (``.zip``: a zipped Shapefile)."""
    suffix = path.suffix
    if suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".zip":
        shp = write(table, path.with_suffix(".shp"), **kwargs)
        zip_shapefile(shp, path)
    else:
        table.to_file(path, engine="pyogrio", **kwargs)
    return path


def zip_shapefile(shp: Path, target: Path, folder: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            if part.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"}:
                archive.write(part, folder + part.name)
    return target


@pytest.fixture
def three_licences() -> gpd.GeoDataFrame:
    """Three licences of 100 ha, 50 ha (two parts) and 25 ha; Shapefile-safe column names.

    ``CONC_ID`` needs ``--field concession_id=CONC_ID``; ``Holder`` and ``STATUS`` match by case.
    """
    return frame(
        [
            square(0, 0, 1000),  # 100 ha
            MultiPolygon([square(2000, 0, 500), square(3000, 0, 500)]),  # 2 x 25 ha
            square(0, 2000, 500),  # 25 ha
        ],
        CONC_ID=["ZW-1", "ZW-2", "ZW-3"],
        Holder=["Alpha (fictional)", "Beta (fictional)", "Gamma (fictional)"],
        STATUS=["active", "suspended", "application"],
        MINERAL=["Diamond", "diamond", " GOLD "],
        granted=["2010-01-15", "2012-06-30", None],
    )


CONC_ID = parse_field_mappings(["concession_id=CONC_ID"])
EXPECTED_HA = {"ZW-1": 100.0, "ZW-2": 50.0, "ZW-3": 25.0}


# ---------------------------------------------------------------------------------------
# formats and CRS


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".zip", ".parquet", ".fgb"])
def test_every_format_reads_the_same_licences(three_licences, tmp_path, suffix):
    path = write(three_licences, tmp_path / f"licences{suffix}")
    loaded = read_concessions(path, CONC_ID)
    table = loaded.table.set_index("concession_id")  # FlatGeobuf reorders features spatially
    assert sorted(table.index) == ["ZW-1", "ZW-2", "ZW-3"]
    assert table.crs.to_epsg() == 20936
    assert (table.area / 10_000).round(6).to_dict() == EXPECTED_HA
    assert table.loc["ZW-2"].geometry.geom_type == "MultiPolygon"
    assert table["holder"].to_dict() == {
        "ZW-1": "Alpha (fictional)",
        "ZW-2": "Beta (fictional)",
        "ZW-3": "Gamma (fictional)",
    }
    assert table["status"].to_dict() == {"ZW-1": "active", "ZW-2": "suspended", "ZW-3": "application"}
    assert table["mineral"].to_dict() == {"ZW-1": "diamond", "ZW-2": "diamond", "ZW-3": "gold"}
    assert table.loc["ZW-1", "granted"] == pd.Timestamp("2010-01-15")
    assert table.loc["ZW-2", "granted"] == pd.Timestamp("2012-06-30")
    assert pd.isna(table.loc["ZW-3", "granted"])
    assert pd.isna(table.loc["ZW-1", "expires"])
    assert loaded.synthetic is False
    if suffix not in (".shp", ".zip"):
        assert loaded.notes == []


def test_canonical_names_need_no_mapping(tmp_path):
    table = frame(
        [square(0, 0, 100)],
        concession_id=["A"],
        holder=["h"],
        status=["active"],
        name=[" Pit 1 "],
        licence_type=["Special Grant"],
        country=["Zimbabwe"],
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg"))
    row = loaded.table.iloc[0]
    assert (row["concession_id"], row["holder"], row["status"]) == ("A", "h", "active")
    assert (row["name"], row["licence_type"], row["country"]) == ("Pit 1", "Special Grant", "Zimbabwe")


def test_file_crs_is_kept_not_reprojected(tmp_path):
    table = frame([square(0, 0, 1000)], crs="EPSG:20935", concession_id=["A"], holder=["h"], status=["active"])
    loaded = read_concessions(write(table, tmp_path / "c.gpkg"))
    assert loaded.table.crs.to_epsg() == 20935
    assert loaded.table.geometry.iloc[0].bounds == (X0, Y0, X0 + 1000, Y0 + 1000)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".parquet", ".fgb"])
def test_file_without_crs_is_refused_naming_it(tmp_path, suffix):
    table = frame([square(0, 0, 100)], crs=None, CONC_ID=["A"], holder=["h"], status=["active"])
    path = write(table, tmp_path / f"nocrs{suffix}")
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(CRSError, match="no coordinate reference system") as info:
        read_concessions(path, CONC_ID)
    assert str(path) in str(info.value)
    assert isinstance(info.value, InputError)


def test_geojson_with_projected_coordinates_and_no_crs_member_is_refused(tmp_path):
    # GeoJSON without a "crs" member is lon/lat by definition (RFC 7946): 400000 is not a longitude.
    collection = json.loads(frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"]).to_json())
    del collection["crs"]
    path = tmp_path / "stripped.geojson"
    path.write_text(json.dumps(collection))
    with pytest.raises(InputError, match="feature 1") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


def test_geojson_in_lonlat_is_read_as_wgs84(tmp_path):
    lonlat = frame(
        [shapely.box(32.0, -19.0, 32.01, -18.99)], crs="EPSG:4326", concession_id=["A"], holder=["h"], status=["active"]
    )
    loaded = read_concessions(write(lonlat, tmp_path / "c.geojson"))
    assert loaded.table.crs.to_epsg() == 4326
    assert loaded.table.geometry.iloc[0].bounds == pytest.approx((32.0, -19.0, 32.01, -18.99))


# ---------------------------------------------------------------------------------------
# field names


def test_field_names_match_case_insensitively(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        CONCESSION_ID=["A", "B"],
        Holder=["h1", "h2"],
        Status=["ACTIVE", " Suspended "],
        Mineral=["DIAMOND", "Gold"],
        EXPIRES=["2030-01-01", None],
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg"))
    assert loaded.table["concession_id"].tolist() == ["A", "B"]
    assert loaded.table["holder"].tolist() == ["h1", "h2"]
    assert loaded.table["status"].tolist() == ["active", "suspended"]
    assert loaded.table["mineral"].tolist() == ["diamond", "gold"]
    assert loaded.table["expires"].iloc[0] == pd.Timestamp("2030-01-01")


def test_field_mappings_with_ten_character_shapefile_names(tmp_path):
    table = frame(
        [square(0, 0, 100)], LICENCE_NO=["MM-77"], HOLDER_NM=["h"], LIC_STATUS=["Expired"], EXPIRY_DT=["2019-12-31"]
    )
    path = write(table, tmp_path / "cadastre.shp")
    mappings = parse_field_mappings(
        ["concession_id=LICENCE_NO", "holder=HOLDER_NM", "concessions:status=LIC_STATUS", "expires=expiry_dt"]
    )
    row = read_concessions(path, mappings).table.iloc[0]
    assert (row["concession_id"], row["holder"], row["status"]) == ("MM-77", "h", "expired")
    assert row["expires"] == pd.Timestamp("2019-12-31")


@pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
def test_canonical_names_truncated_by_the_shapefile_driver_map_back(tmp_path):
    # concession_id, licence_type and status_date do not fit in 10 characters.
    table = frame(
        [square(0, 0, 100)],
        concession_id=["A"],
        holder=["h"],
        status=["revoked"],
        licence_type=["EPO"],
        status_date=["2020-05-01"],
    )
    with pytest.warns(UserWarning, match="truncated"):
        path = write(table, tmp_path / "c.shp")
    with pytest.raises(InputError, match="missing column 'concession_id'"):
        read_concessions(path)
    mappings = parse_field_mappings(["concession_id=concession", "licence_type=licence_ty", "status_date=status_dat"])
    row = read_concessions(path, mappings).table.iloc[0]
    assert (row["concession_id"], row["licence_type"], row["status"]) == ("A", "EPO", "revoked")
    assert row["status_date"] == pd.Timestamp("2020-05-01")


def test_parse_field_mappings_by_layer():
    mappings = parse_field_mappings(["holder=HOLDER_NM", "production:carats=CT", " Concessions : Status = LIC "])
    assert mappings == {None: {"holder": "HOLDER_NM"}, "production": {"carats": "CT"}, "concessions": {"status": "LIC"}}
    assert parse_field_mappings(None) == {}


@pytest.mark.parametrize("item", ["holder", "holder=", "=HOLDER_NM", "concessions:holder= "])
def test_parse_field_mappings_refuses_malformed_items(item):
    with pytest.raises(InputError, match="canonical=theirs") as info:
        parse_field_mappings([item])
    assert repr(item) in str(info.value)


def test_parse_field_mappings_refuses_an_empty_canonical_name_after_the_layer():
    with pytest.raises(InputError, match="canonical=theirs"):
        parse_field_mappings(["concessions:=X"])


def test_missing_required_column_is_named_with_the_field_fix(tmp_path):
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], LIC_STAT=["active"])
    path = write(table, tmp_path / "c.gpkg")
    with pytest.raises(InputError) as info:
        read_concessions(path)
    message = str(info.value)
    assert "missing column 'status'" in message
    assert "--field status=" in message
    assert "LIC_STAT" in message  # lists what the file has
    assert str(path) in message


def test_layer_mapping_to_a_column_the_file_lacks_is_refused(tmp_path):
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"])
    path = write(table, tmp_path / "c.gpkg")
    with pytest.raises(InputError, match="--field holder=OWNER: the file has no column 'OWNER'"):
        read_concessions(path, parse_field_mappings(["concessions:holder=OWNER"]))


def test_mapping_for_another_layer_is_ignored(tmp_path):
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"], CT=[3])
    path = write(table, tmp_path / "c.gpkg")
    loaded = read_concessions(path, parse_field_mappings(["production:holder=CT"]))
    assert loaded.table["holder"].tolist() == ["h"]


# ---------------------------------------------------------------------------------------
# encodings


@pytest.mark.parametrize(("encoding", "cpg"), [("ISO-8859-1", "ISO-8859-1"), ("cp1252", "CP1252"), ("1252", "1252")])
@pytest.mark.parametrize("zipped", [False, True])
def test_latin1_shapefile_with_cpg_reads_accents(tmp_path, encoding, cpg, zipped):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        CONC_ID=["A", "B"],
        holder=[ACCENTED, "Zé Garimpeiro Lda"],
        status=["active", "active"],
    )
    shp = write(table, tmp_path / "latin.shp", encoding=encoding)
    assert shp.with_suffix(".cpg").read_text().strip() == cpg
    dbf = shp.with_suffix(".dbf").read_bytes()
    assert "Mineração".encode("latin-1") in dbf and "Mineração".encode() not in dbf
    path = zip_shapefile(shp, tmp_path / "latin.zip", folder="export/") if zipped else shp
    loaded = read_concessions(path, CONC_ID)
    assert loaded.table["holder"].tolist() == [ACCENTED, "Zé Garimpeiro Lda"]


def test_zip_with_two_shapefiles_is_refused(tmp_path, three_licences):
    write(three_licences, tmp_path / "a.shp")
    write(three_licences, tmp_path / "b.shp")
    target = tmp_path / "two.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for part in tmp_path.glob("[ab].*"):
            archive.write(part, part.name)
    with pytest.raises(InputError, match="exactly one .shp, found 2"):
        read_concessions(target, CONC_ID)


def test_file_named_zip_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "c.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="does not hold zip data") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------
# values: status, ids, dates, synthetic


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACTIVE", "active"),
        (" Suspended ", "suspended"),
        ("Expired", "expired"),
        ("REVOKED", "revoked"),
        ("application", "application"),
        ("Cancelled", "revoked"),
        ("pending", "application"),
    ],
)
def test_status_normalised(tmp_path, raw, expected):
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=[raw])
    assert read_concessions(write(table, tmp_path / "c.gpkg")).table["status"].tolist() == [expected]


@pytest.mark.parametrize("bad", ["operating", None, ""])
def test_unknown_status_refused_naming_the_feature(tmp_path, bad):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100), square(400, 0, 100)],
        concession_id=["A", "B", "C"],
        holder=["h"] * 3,
        status=["active", "active", bad],
    )
    path = write(table, tmp_path / "c.gpkg")
    with pytest.raises(InputError, match="feature 3: status") as info:
        read_concessions(path)
    assert "active, suspended, expired, revoked, application" in str(info.value)
    assert str(path) in str(info.value)


def test_duplicate_concession_id_refused_naming_both_features(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100), square(400, 0, 100), square(600, 0, 100)],
        concession_id=["ZW-1", "ZW-2", "ZW-3", " ZW-2 "],
        holder=["h"] * 4,
        status=["active"] * 4,
    )
    path = write(table, tmp_path / "c.gpkg")
    with pytest.raises(InputError, match="'ZW-2' is used by features 2 and 4") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


def test_blank_text_fields_become_none(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        concession_id=["A", "B"],
        holder=["h", "  "],
        status=["active"] * 2,
        mineral=["  ", " "],
        name=[" ", ""],
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg")).table
    assert loaded["holder"].tolist() == ["h", ""]
    assert loaded["mineral"].tolist() == ["unknown", "unknown"]
    assert loaded["name"].tolist() == [None, None]


def test_blank_mineral_beside_a_named_one_becomes_unknown(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        concession_id=["A", "B"],
        holder=["h"] * 2,
        status=["active"] * 2,
        mineral=["Diamond", None],
        name=["Pit", None],
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg")).table
    assert loaded["mineral"].tolist() == ["diamond", "unknown"]
    assert loaded["name"].iloc[1] is None


def test_numeric_ids_read_as_text_without_decimal_point(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)], concession_id=[12.0, 13.0], holder=["h"] * 2, status=["active"] * 2
    )
    assert read_concessions(write(table, tmp_path / "c.gpkg")).table["concession_id"].tolist() == ["12", "13"]


def test_empty_concession_id_refused_naming_the_feature(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)], concession_id=["A", "  "], holder=["h"] * 2, status=["active"] * 2
    )
    with pytest.raises(InputError, match="feature 2: concession_id is empty"):
        read_concessions(write(table, tmp_path / "c.gpkg"))


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
def test_dates_parsed(tmp_path, suffix):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        CONC_ID=["A", "B"],
        holder=["h"] * 2,
        status=["suspended", "expired"],
        granted=["2010-01-15", "2011-02-28"],
        expires=[None, "2019-12-31"],
        status_dat=["2020-07-01", None],
    )
    mappings = parse_field_mappings(["concession_id=CONC_ID", "status_date=status_dat"])
    loaded = read_concessions(write(table, tmp_path / f"c{suffix}"), mappings).table
    assert loaded["granted"].tolist() == [pd.Timestamp("2010-01-15"), pd.Timestamp("2011-02-28")]
    assert pd.isna(loaded["expires"].iloc[0]) and loaded["expires"].iloc[1] == pd.Timestamp("2019-12-31")
    assert loaded["status_date"].iloc[0] == pd.Timestamp("2020-07-01") and pd.isna(loaded["status_date"].iloc[1])
    assert all(str(loaded[c].dtype).startswith("datetime64") for c in ("granted", "expires", "status_date"))


def test_date_typed_fields_parsed(tmp_path):
    table = frame(
        [square(0, 0, 100)],
        concession_id=["A"],
        holder=["h"],
        status=["active"],
        granted=pd.to_datetime(["2010-01-15"]),
        expires=pd.to_datetime(["2030-06-30 13:45"]),
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg")).table
    assert loaded["granted"].iloc[0] == pd.Timestamp("2010-01-15")
    assert loaded["expires"].iloc[0] == pd.Timestamp("2030-06-30")  # normalised to the day


@pytest.mark.parametrize("bad", ["2020-02-30", "soon", "2020-13-01"])
def test_bad_date_refused_naming_the_feature_and_column(tmp_path, bad):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        concession_id=["A", "B"],
        holder=["h"] * 2,
        status=["active"] * 2,
        expires=["2030-01-01", bad],
    )
    path = write(table, tmp_path / "c.gpkg")
    with pytest.raises(InputError, match=f"feature 2: expires '{bad}' is not a date; write YYYY-MM-DD") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


def test_far_future_expiry_sentinel_is_read_as_that_day(tmp_path):
    # Cadastres write 9999-12-31 for "no expiry": it must load, not crash pandas' nanosecond range.
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"], expires=["9999-12-31"])
    path = write(table, tmp_path / "c.gpkg")
    expires = read_concessions(path).table["expires"].iloc[0]
    assert (expires.year, expires.month, expires.day) == (9999, 12, 31)


def test_text_date_with_utc_offset_is_read_as_its_local_day(tmp_path):
    table = frame(
        [square(0, 0, 100), square(200, 0, 100)],
        concession_id=["A", "B"],
        holder=["h"] * 2,
        status=["active"] * 2,
        granted=["2021-03-01T10:00:00+02:00", "2020-01-01"],
    )
    loaded = read_concessions(write(table, tmp_path / "c.gpkg")).table
    assert loaded["granted"].tolist() == [pd.Timestamp("2021-03-01"), pd.Timestamp("2020-01-01")]


@pytest.mark.parametrize("ambiguous", ["03/04/2021", "today"])
def test_non_iso_date_is_refused(tmp_path, ambiguous):
    table = frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"], granted=[ambiguous])
    with pytest.raises(InputError, match="feature 1: granted"):
        read_concessions(write(table, tmp_path / "c.gpkg"))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["no", "yes"], True),
        (["", "TRUE"], True),
        ([" Y ", None], True),
        ([0, 1], True),
        ([True, False], True),
        (["no", ""], False),
        ([0, 0], False),
        ([False, False], False),
        (None, False),
    ],
)
def test_synthetic_column_detected(tmp_path, values, expected):
    columns = dict(concession_id=["A", "B"], holder=["h"] * 2, status=["active"] * 2)
    if values is not None:
        columns["Synthetic"] = values
    table = frame([square(0, 0, 100), square(200, 0, 100)], **columns)
    loaded = read_concessions(write(table, tmp_path / "c.gpkg"))
    assert loaded.synthetic is expected
    assert "synthetic" not in loaded.table.columns


# ---------------------------------------------------------------------------------------
# the geometry zoo

BOWTIE = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])  # two 2500 m² triangles
CLOCKWISE = shapely.orient_polygons(square(0, 0, 100), exterior_cw=True)
DUPLICATE_VERTEX = Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 100), (X0, Y0 + 100)])
WITH_HOLE = shapely.orient_polygons(Polygon(square(0, 0, 100).exterior.coords, [square(25, 25, 50).exterior.coords]))
MULTIPART = MultiPolygon([square(0, 0, 100), square(200, 0, 50)])

ZOO = {
    # name: (geometry, area m² or None, note fragments expected, geometry types allowed)
    "valid": (square(0, 0, 100), 10_000.0, [], {"Polygon"}),
    "bowtie": (BOWTIE, 5_000.0, ["invalid (Self-intersection", "repaired"], {"MultiPolygon"}),
    "clockwise": (CLOCKWISE, 10_000.0, ["rings re-oriented"], {"Polygon"}),
    "duplicate_vertex": (DUPLICATE_VERTEX, 10_000.0, ["duplicate vertices removed"], {"Polygon"}),
    "empty": (Polygon(), None, ["empty geometry, kept without area"], set()),
    "none": (None, None, ["empty geometry, kept without area"], set()),
    "multipart": (MULTIPART, 12_500.0, [], {"MultiPolygon"}),
    "hole": (WITH_HOLE, 7_500.0, [], {"Polygon"}),
}


def test_zoo_inputs_are_what_they_claim():
    assert not BOWTIE.is_valid
    assert not shapely.is_ccw(CLOCKWISE.exterior)
    assert shapely.get_num_coordinates(DUPLICATE_VERTEX) == 6
    assert WITH_HOLE.is_valid and len(WITH_HOLE.interiors) == 1


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
@pytest.mark.parametrize("case", list(ZOO))
def test_geometry_zoo(tmp_path, case, suffix):
    geometry, area, fragments, types = ZOO[case]
    # a valid licence first, so the zoo case is feature 2 and a third follows it
    table = frame(
        [square(-1000, 0, 100), geometry, square(-2000, 0, 100)],
        concession_id=["OK", "ZOO", "AFTER"],
        holder=["h1", "h2", "h3"],
        status=["active", "expired", "active"],
    )
    path = write(table, tmp_path / f"zoo{suffix}")
    loaded = read_concessions(path)
    assert loaded.table["concession_id"].tolist() == ["OK", "ZOO", "AFTER"]  # nothing dropped
    assert loaded.table["holder"].tolist() == ["h1", "h2", "h3"]
    assert loaded.table["status"].tolist() == ["active", "expired", "active"]
    repaired = loaded.table.geometry.iloc[1]
    if area is None:
        assert repaired is None
    else:
        assert repaired.geom_type in types
        assert repaired.is_valid
        assert repaired.area == pytest.approx(area)
        assert shapely.equals(repaired, geometry) or case in ("bowtie",)
        for polygon in shapely.get_parts(repaired):
            assert shapely.is_ccw(polygon.exterior)
            assert not any(shapely.is_ccw(ring) for ring in polygon.interiors)
    zoo_notes = [n for n in loaded.notes if "feature 2 (ZOO)" in n]
    assert all(str(path) in n for n in loaded.notes)
    assert len(loaded.notes) == len(zoo_notes)  # the valid neighbours get none
    if fragments:
        assert len(zoo_notes) == 1
        for fragment in fragments:
            assert fragment in zoo_notes[0]
    else:
        assert zoo_notes == []


def test_bowtie_repaired_into_its_two_triangles():
    repaired, notes = repair_geometries(shapely.from_wkt([BOWTIE.wkt]), ["B"])
    left = Polygon([(X0, Y0), (X0 + 50, Y0 + 50), (X0, Y0 + 100)])
    right = Polygon([(X0 + 50, Y0 + 50), (X0 + 100, Y0), (X0 + 100, Y0 + 100)])
    assert shapely.normalize(repaired[0]).equals(shapely.normalize(MultiPolygon([left, right])))
    assert notes[0].startswith("feature 1 (B): invalid (Self-intersection")


def test_three_dimensional_geometry_flattened():
    cube_face = Polygon([(X0, Y0, 5), (X0 + 10, Y0, 5), (X0 + 10, Y0 + 10, 5), (X0, Y0 + 10, 5)])
    repaired, _ = repair_geometries(shapely.from_wkt([cube_face.wkt]), ["Z"])
    assert not repaired[0].has_z
    assert repaired[0].area == pytest.approx(100.0)


def test_collapsed_geometry_kept_as_none_with_a_note():
    flat = Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 20, Y0), (X0, Y0)])  # zero area
    repaired, notes = repair_geometries(shapely.from_wkt([flat.wkt]), ["F"])
    assert repaired[0] is None
    assert notes == ["feature 1 (F): geometry collapsed to nothing when repaired, kept without area"]


def test_point_refused(tmp_path):
    table = frame([square(0, 0, 100), Point(X0, Y0)], concession_id=["A", "P"], holder=["h"] * 2, status=["active"] * 2)
    with pytest.raises(InputError, match=r"feature 2 \(P\) is a Point; concessions must be polygons"):
        read_concessions(write(table, tmp_path / "c.gpkg"))


def test_point_refusal_names_the_file(tmp_path):
    table = frame([Point(X0, Y0)], concession_id=["P"], holder=["h"], status=["active"])
    path = write(table, tmp_path / "points.gpkg")
    with pytest.raises(InputError) as info:
        read_concessions(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".shp", ".zip"])
def test_valid_shapefile_gets_no_notes(tmp_path, three_licences, suffix):
    loaded = read_concessions(write(three_licences, tmp_path / f"c{suffix}"), CONC_ID)
    assert loaded.notes == []


# ---------------------------------------------------------------------------------------
# paths and layers


@pytest.mark.parametrize(
    "raw", ["/vsicurl/http://x/y.gpkg", "https://x/y.gpkg", "/vsizip//tmp/c.zip/c.shp", "file:///tmp/c.gpkg"]
)
def test_urls_and_gdal_virtual_paths_refused(raw):
    with pytest.raises(InputError, match="GDAL virtual paths and URLs are not accepted") as info:
        read_concessions(raw)
    assert raw in str(info.value)


def test_missing_file_refused_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "c.gpkg"
    with pytest.raises(InputError, match="no such file or folder") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


def test_folder_and_unsupported_type_refused(tmp_path):
    with pytest.raises(InputError, match="expected a regular file"):
        read_concessions(tmp_path)
    csv = tmp_path / "c.csv"
    csv.write_text("concession_id,holder,status\nA,h,active\n")
    with pytest.raises(InputError, match="unsupported file type .csv"):
        read_concessions(csv)


@pytest.mark.filterwarnings("ignore:GPKG. bad application_id")
def test_unreadable_vector_file_refused(tmp_path):
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(InputError, match="cannot be read as a vector file") as info:
        read_concessions(path)
    assert str(path) in str(info.value)


def test_local_folder_whose_name_starts_with_vsi_is_accepted(tmp_path):
    folder = tmp_path / "vsi_exports"
    folder.mkdir()
    path = write(frame([square(0, 0, 100)], concession_id=["A"], holder=["h"], status=["active"]), folder / "c.gpkg")
    assert read_concessions(path).table["concession_id"].tolist() == ["A"]


def test_geopackage_with_several_layers(tmp_path, three_licences):
    path = tmp_path / "many.gpkg"
    write(three_licences, path, layer="roads")
    write(three_licences.iloc[:1], path, layer="rivers")
    with pytest.raises(InputError, match=r"has 2 layers \(roads, rivers\)"):
        read_concessions(path, CONC_ID)
    write(three_licences.iloc[1:], path, layer="concessions")
    assert read_concessions(path, CONC_ID).table["concession_id"].tolist() == ["ZW-2", "ZW-3"]
