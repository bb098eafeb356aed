"""The hostile-input corpus, run through the command line.

Each item is made by a fixture (nothing downloaded) and handed to ``analyze`` in place of
one good input. Every one must end in a clean refusal: exit status 2, exactly one
``minewatch: error:`` line naming the file and the reason, no traceback, and the previous
output folder byte-identical with no staging folder left behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import app
from tests.conftest import write_field, write_raster


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A small field's inputs and an earlier analysis of them in ``out``."""
    base = tmp_path_factory.mktemp("corpus")
    paths = write_field(base / "field")
    out = base / "out"
    assert app.main(cli_args(paths, out)) == 0
    return paths, out


def cli_args(paths: dict, out: Path) -> list[str]:
    args = ["analyze", "--quiet", "--out", str(out)]
    for layer in ("concessions", "production", "national", "activity"):
        args += [f"--{layer}", str(paths[layer])]
    return args


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- the corpus: each function writes one hostile input and returns (layer, path, expected words)


def vrt_disguised_as_tif(tmp_path, paths):
    folder = tmp_path / "activity"
    folder.mkdir()
    secret = tmp_path / "secret.tif"
    write_raster(secret, np.ones((4, 4), np.float32), from_origin(0, 0, 10, 10), "EPSG:32736")
    for year in ("2018", "2019"):
        (folder / f"{year}.tif").write_text(
            '<VRTDataset rasterXSize="4" rasterYSize="4"><VRTRasterBand dataType="Float32" band="1">'
            f"<SimpleSource><SourceFilename>{secret}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>"
            "</VRTRasterBand></VRTDataset>"
        )
    return "activity", folder, "2018.tif: is a GDAL virtual dataset"


def _zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            archive.writestr(info, data)
    assert path.stat().st_size < 1_000_000  # small on disk
    return path


def zip_bomb(tmp_path, paths):
    # 256 MB of zeros in about 250 kB: refused for its ratio (the total-size check is
    # tested with a lowered limit in test_zip_total_size_limit, to keep this suite fast).
    path = tmp_path / "cadastre.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in ("c.shp", "c.dbf", "c.shx"):
            with archive.open(name, "w") as member:
                for _ in range(16 if name == "c.dbf" else 1):
                    member.write(b"\0" * (1 << 24))
    assert path.stat().st_size < 1_000_000
    return "concessions", path, "zip bomb"


def zip_slip(tmp_path, paths):
    return "concessions", _zip(tmp_path / "c.zip", [("../../evil.shp", b"x", 0)]), "points outside the archive"


def symlink_in_zip(tmp_path, paths):
    return "concessions", _zip(tmp_path / "c.zip", [("c.shp", b"/etc/passwd", 0o120777)]), "symbolic link"


def million_vertex_ring(tmp_path, paths):
    angles = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
    ring = np.c_[32.3 + 0.01 * np.cos(angles), -19.9 + 0.01 * np.sin(angles)].round(7).tolist()
    feature = {
        "type": "Feature",
        "properties": {"concession_id": "A", "holder": "Fictional Holder", "status": "active"},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }
    path = tmp_path / "c.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return "concessions", path, "feature 1 has 1,000,001 vertices"


def csv_with_a_100_mb_line(tmp_path, paths):
    path = tmp_path / "production.csv"
    with open(path, "w") as handle:
        handle.write("concession_id,period,carats\nA,2018,1\n")
        handle.write("A" * 100_000_000 + ",2019,10\n")
    return "production", path, "line 3 is over 1,024 kB long"


def malformed_utf8_csv(tmp_path, paths):
    path = tmp_path / "production.csv"
    path.write_bytes(b"concession_id,period,carats\nA\xff\xfe\xc3,2018,1\n")
    return "production", path, "is not UTF-8"


def malformed_utf8_geojson(tmp_path, paths):
    path = tmp_path / "c.geojson"
    text = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"concession_id": "A", "holder": "HOLDER", "status": "active"},
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[32, -19], [32.1, -19], [32.1, -19.1], [32, -19]]],
                    },
                }
            ],
        }
    )
    path.write_bytes(text.encode().replace(b"HOLDER", b"Fict\xff\xfeional"))
    return "concessions", path, "not UTF-8"


def geotiff_with_corrupt_tile(tmp_path, paths):
    folder = tmp_path / "activity"
    folder.mkdir()
    for source in sorted(paths["activity"].iterdir()):
        with rasterio.open(source) as dataset:
            profile, values = dataset.profile, dataset.read(1)
        profile.update(tiled=True, blockxsize=64, blockysize=64, compress="deflate")
        with rasterio.open(folder / source.name, "w", **profile) as dataset:
            dataset.write(values, 1)
    damaged = folder / "2019.tif"
    with rasterio.open(damaged) as dataset:
        offset = int(dataset.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(dataset.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    data = bytearray(damaged.read_bytes())
    data[offset : offset + size] = b"\x13" * size
    damaged.write_bytes(bytes(data))
    return "activity", folder, "2019.tif: rows"


def shapefile_without_shx(tmp_path, paths):
    import geopandas as gpd

    frame = gpd.read_file(paths["concessions"]).rename(columns={"concession_id": "id"})
    frame.to_file(tmp_path / "c.shp")
    (tmp_path / "c.shx").unlink()
    return "concessions", tmp_path / "c.shp", "c.shx is missing"


def vsicurl_path(tmp_path, paths):
    return "concessions", "/vsicurl/http://127.0.0.1:9/c.gpkg", "GDAL virtual paths and URLs are not accepted"


def url_path(tmp_path, paths):
    return "production", "https://example.org/production.csv", "URLs are not accepted"


def device_file(tmp_path, paths):
    return "concessions", "/dev/zero", "expected a regular file"


def named_pipe(tmp_path, paths):
    path = tmp_path / "c.geojson"
    os.mkfifo(path)
    return "concessions", path, "expected a regular file"


def kml_renamed_gpkg(tmp_path, paths):
    path = tmp_path / "c.gpkg"
    path.write_text('<?xml version="1.0"?><kml><NetworkLink><Link><href>http://127.0.0.1:9/x.kml</href></Link>'
                    "</NetworkLink></kml>")  # fmt: skip
    return "concessions", path, "does not hold GeoPackage data"


def link_out_of_activity_folder(tmp_path, paths):
    folder = tmp_path / "activity"
    folder.mkdir()
    outside = tmp_path / "private.tif"
    write_raster(outside, np.zeros((4, 4), np.float32), from_origin(0, 0, 10, 10), "EPSG:32736")
    (folder / "2018.tif").symlink_to(outside)
    return "activity", folder, "leads outside"


def stac_asset_outside_catalog(tmp_path, paths):
    import pystac

    folder = tmp_path / "catalog"
    folder.mkdir()
    catalog = pystac.Catalog("c", "hostile catalog")
    item = pystac.Item(
        "2018",
        geometry=None,
        bbox=None,
        datetime=None,
        properties={
            "minewatch:period": "2018",
            "start_datetime": "2018-01-01T00:00:00Z",
            "end_datetime": "2018-12-31T23:59:59Z",
        },  # fmt: skip
    )
    item.add_asset("activity", pystac.Asset(str(paths["activity"] / "2018.tif"), media_type="image/tiff"))
    catalog.add_item(item)
    catalog.normalize_and_save(str(folder), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return "activity", folder / "catalog.json", "leads outside"


def small_tiff_claiming_160_gigapixels(tmp_path, paths):
    folder = tmp_path / "activity"
    folder.mkdir()
    profile = dict(driver="GTiff", width=400_000, height=400_000, count=1, dtype="uint8", crs="EPSG:32736",
                   transform=from_origin(0, 0, 10, 10), tiled=True, blockxsize=4096, blockysize=4096,
                   sparse_ok=True, compress="deflate")  # fmt: skip
    with rasterio.open(folder / "2018.tif", "w", **profile):
        pass
    assert (folder / "2018.tif").stat().st_size < 1_000_000
    return "activity", folder, "more than the limit max_raster_megapixels"


def excel_zip_bomb(tmp_path, paths):
    path = tmp_path / "production.xlsx"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/worksheets/sheet1.xml", "w") as member,
    ):
        for _ in range(16):
            member.write(b" " * (1 << 24))
    return "production", path, "zip bomb"


CORPUS = [
    vrt_disguised_as_tif,
    zip_bomb,
    zip_slip,
    symlink_in_zip,
    million_vertex_ring,
    csv_with_a_100_mb_line,
    malformed_utf8_csv,
    malformed_utf8_geojson,
    geotiff_with_corrupt_tile,
    shapefile_without_shx,
    vsicurl_path,
    url_path,
    device_file,
    named_pipe,
    kml_renamed_gpkg,
    link_out_of_activity_folder,
    stac_asset_outside_catalog,
    small_tiff_claiming_160_gigapixels,
    excel_zip_bomb,
]


@pytest.mark.parametrize("make_hostile", CORPUS, ids=[f.__name__ for f in CORPUS])
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_hostile_input_is_refused_cleanly(field, tmp_path, capsys, make_hostile):
    paths, out = field
    before = snapshot(out)
    layer, hostile, expected = make_hostile(tmp_path, paths)
    status = app.main(cli_args({**paths, layer: hostile}, out))
    err = capsys.readouterr().err
    assert status == 2, err
    errors = [line for line in err.splitlines() if line.startswith("minewatch: error:")]
    assert len(errors) == 1, err
    assert expected in errors[0]
    assert str(hostile).split("/")[-1] in errors[0]  # the file (or folder) at fault is named
    assert "Traceback" not in err
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["field", "out"]  # no lock, staging or other file


def test_a_refusal_into_a_new_folder_writes_nothing_at_all(field, tmp_path, capsys):
    paths, _ = field
    out = tmp_path / "new" / "deeper" / "results"
    assert app.main(cli_args({**paths, "production": "/dev/zero"}, out)) == 2
    assert "expected a regular file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # not even the folders --out would have needed


def test_a_limit_can_be_raised_for_a_genuine_file(field, tmp_path, capsys):
    """The vertex limit is a setting: raised, the same kind of ring is read."""
    paths, _ = field
    import geopandas as gpd
    import shapely

    frame = gpd.read_file(paths["concessions"])
    frame.loc[0, "geometry"] = shapely.segmentize(frame.geometry.iloc[0], 0.1)  # ~1 m to ~10 cm spacing
    dense = tmp_path / "dense.gpkg"
    frame.to_file(dense, layer="concessions")
    vertices = int(shapely.get_num_coordinates(frame.geometry.iloc[0]))
    assert vertices > 1000
    args = cli_args({**paths, "concessions": dense}, tmp_path / "out")
    assert app.main([*args, "--limit", f"max_feature_vertices={vertices - 1}"]) == 2
    assert f"has {vertices:,} vertices" in capsys.readouterr().err
    assert app.main([*args, "--limit", f"max_feature_vertices={vertices}"]) == 0


def test_limits_from_the_settings_file(field, tmp_path, capsys):
    paths, _ = field
    config = tmp_path / "settings.toml"
    config.write_text("activity_threshold = 0.5\n[limits]\nmax_table_line_kb = 0.01\n")
    status = app.main([*cli_args(paths, tmp_path / "out"), "--config", str(config)])
    assert status == 2
    assert "more than the limit max_table_line_kb=0.01" in capsys.readouterr().err


def test_zip_total_size_limit(tmp_path):
    """Many members, each compressing modestly, that add up past the limit are refused too."""
    from geo.errors import InputError
    from layers.archives import checked_members
    from layers.limits import InputLimits

    rng = np.random.default_rng(0)
    members = [(f"part{k}.dbf", rng.integers(0, 2, 1_000_000, dtype=np.uint8).tobytes(), 0) for k in range(5)]
    path = _zip(tmp_path / "c.zip", members)
    assert len(checked_members(path, "concessions", InputLimits(max_zip_uncompressed_mb=5))) == 5
    with pytest.raises(InputError, match=r"expands to 5 MB .* more than the limit max_zip_uncompressed_mb=4"):
        checked_members(path, "concessions", InputLimits(max_zip_uncompressed_mb=4))


def test_a_results_folder_from_someone_else_gets_the_same_checks(field, tmp_path):
    """``serve --results`` reads GeoJSON it did not write itself: a VRT in it is refused unread."""
    import shutil

    from geo.errors import InputError
    from layers.results import read_analysis

    _, out = field
    copy = tmp_path / "shared-results"
    shutil.copytree(out, copy)
    (copy / "flags.geojson").write_text(
        '<OGRVRTDataSource><OGRVRTLayer name="f"><SrcDataSource>/etc/passwd</SrcDataSource></OGRVRTLayer>'
        "</OGRVRTDataSource>"
    )
    with pytest.raises(InputError, match="flags.geojson: is a GDAL virtual dataset"):
        read_analysis(copy)


@pytest.mark.parametrize("link", ["http://127.0.0.1:9/item.json", "OUTSIDE"])
def test_an_activity_catalog_linking_out_is_refused_without_reading(field, tmp_path, link):
    """A child link to a URL or to a JSON file outside the catalog's folder is not followed."""
    from geo.errors import InputError
    from layers.activity import find_activity_rasters

    outside = tmp_path / "private" / "notes.json"
    outside.parent.mkdir()
    outside.write_text('{"type": "Feature", "stac_version": "1.0.0", "id": "secret"}')
    folder = tmp_path / "catalog"
    folder.mkdir()
    href = str(outside) if link == "OUTSIDE" else link
    (folder / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "hostile",
        "links": [{"rel": "item", "href": href, "type": "application/geo+json"}],
    }))  # fmt: skip
    reason = "lies outside the catalog's folder" if link == "OUTSIDE" else "links to a remote or virtual file"
    with pytest.raises(InputError, match=f"is not a readable STAC catalog: .*{reason}"):
        find_activity_rasters(folder / "catalog.json")
