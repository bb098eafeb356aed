"""build-activity from a STAC API URL: search, read the assets over HTTP, same rasters as from the folder.

Data: a minimal STAC API served from 127.0.0.1 by :class:`tests.test_network.RecordingServer`
(a forked process): a landing page with ``conformsTo``, ``/search`` (GET and POST,
``bbox``, ``datetime``, ``collections``, the query extension's ``eo:cloud_cover``, pages
of 4 items chained by ``next`` links) whose items are the bundled synthetic scenes of
``data/demo_scenes``, with Earth Search's asset keys (``blue``, ``red``, ``scl``...) and
hrefs on the same server, which serves them with byte ranges. A few broken APIs sit
beside it under other roots. GDAL's offline policy is in force throughout, so every
byte read went through :func:`layers.network.remote_reads`. No test uses the internet.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp

from geo.errors import InputError
from layers.activity_build import build_activity, run_cli
from layers.network import OFFLINE_GDAL_CONFIG, apply_offline_policy, offline_policy_applied
from layers.sentinel2 import SceneQuery, find_scenes
from tests.test_network import PROXY_VARIABLES, RecordingServer, preserved_environment

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCENES = ROOT / "data" / "demo_scenes"
COLLECTION = "sentinel-2-l2a"
ASSET_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
PAGE_SIZE = 4  # the server's own page limit: a search of 10 items takes 3 pages
BBOX = "32.2,-19.7,32.4,-19.5"  # around the demo's 3 km square (lon 32.30..32.33, lat -19.65..-19.62)
SAS_TOKEN = "st=2026-11-29T08%3A00%3A00Z&se=2026-11-29T12%3A00%3A00Z&sp=rl&sv=2024-05-04&sr=c&sig=bWluZXdhdGNo%3D"
CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
]


def cloud_percent(scl_path: str) -> float:
    with rasterio.open(scl_path) as dataset:
        classes = dataset.read(1)
    return round(100 * float(np.isin(classes, [3, 8, 9, 10]).mean()), 1)


def demo_items(base_url: str) -> list[dict]:
    """The demo scenes as STAC items (ids as the folder gives them) with assets on ``base_url``."""
    items = []
    for scene in find_scenes(DEMO_SCENES):
        band = scene.band("B04")
        west, south, east, north = rasterio.warp.transform_bounds(band.crs_wkt, "EPSG:4326", *band.bounds())
        assets = {
            key: {
                "href": f"{base_url}/scenes/{Path(scene.band(name).path).name}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                **({"raster:bands": [{"scale": 0.0001, "offset": -0.1}]} if name != "SCL" else {}),
            }
            for name, key in ASSET_KEYS.items()
        }
        # a preview that must never be mistaken for the red, green and blue bands
        assets["visual"] = {**assets["red"], "roles": ["visual"], "eo:bands": [{"name": "red"}, {"name": "green"}]}
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": [],
                "id": scene.scene_id,
                "collection": COLLECTION,
                "bbox": [west, south, east, north],
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
                },
                "properties": {
                    "datetime": f"{scene.date.isoformat()}T07:36:21Z",
                    "eo:cloud_cover": cloud_percent(scene.band("SCL").path),
                    "minewatch:synthetic": True,
                },
                "assets": assets,
                "links": [],
            }
        )
    return items


def search_parameters(method: str, query: str, body: bytes) -> dict:
    if method == "POST":
        return json.loads(body or b"{}")
    parameters = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
    if "bbox" in parameters:
        parameters["bbox"] = [float(v) for v in parameters["bbox"].split(",")]
    if "collections" in parameters:
        parameters["collections"] = parameters["collections"].split(",")
    return parameters


def matches(item: dict, parameters: dict) -> bool:
    if parameters.get("collections") and item["collection"] not in parameters["collections"]:
        return False
    if parameters.get("bbox"):
        w, s, e, n = parameters["bbox"]
        iw, is_, ie, in_ = item["bbox"]
        if iw > e or ie < w or is_ > n or in_ < s:
            return False
    if parameters.get("datetime"):
        start, _, end = parameters["datetime"].partition("/")
        when = dt.datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))

        def bound(text: str, default: dt.datetime) -> dt.datetime:
            if text in ("", ".."):
                return default
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

        low = bound(start, dt.datetime.min.replace(tzinfo=dt.UTC))
        high = bound(end or start, dt.datetime.max.replace(tzinfo=dt.UTC))
        if not low <= when <= high:
            return False
    cloud = (parameters.get("query") or {}).get("eo:cloud_cover", {})
    return "lte" not in cloud or item["properties"]["eo:cloud_cover"] <= cloud["lte"]


def stac_api(root_url: str, items: list[dict], conforms_to: list[str] = CONFORMS_TO):
    """The two routes of a STAC API at ``root_url``: its landing page and ``/search``."""
    search_url = f"{root_url}/search"

    def landing(method, path, query, body):
        page = {
            "type": "Catalog",
            "id": "minewatch-test-api",
            "stac_version": "1.0.0",
            "description": "a STAC API for the tests (synthetic scenes)",
            "conformsTo": conforms_to,
            "links": [
                {"rel": "self", "href": root_url, "type": "application/json"},
                {"rel": "root", "href": root_url, "type": "application/json"},
                {"rel": "search", "href": search_url, "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": search_url, "type": "application/geo+json", "method": "POST"},
            ],
        }
        return 200, "application/json", json.dumps(page).encode()

    def search(method, path, query, body):
        parameters = search_parameters(method, query, body)
        found = [item for item in items if matches(item, parameters)]
        start = int(parameters.get("token") or 0)
        size = min(int(parameters.get("limit") or PAGE_SIZE), PAGE_SIZE)
        page = {"type": "FeatureCollection", "features": found[start : start + size], "links": []}
        if start + size < len(found):
            if method == "POST":
                following = {**parameters, "token": str(start + size)}
                page["links"].append({"rel": "next", "href": search_url, "method": "POST", "body": following})
            else:
                following = urllib.parse.urlencode({**dict(urllib.parse.parse_qsl(query)), "token": start + size})
                page["links"].append({"rel": "next", "href": f"{search_url}?{following}", "method": "GET"})
        return 200, "application/geo+json", json.dumps(page).encode()

    path = urllib.parse.urlsplit(root_url).path
    return {path: landing, f"{path}/search": search}


def reprocessed(items: list[dict]) -> list[dict]:
    """Each item, then the same acquisition processed again (a higher baseline), as Earth Search lists them."""
    listed = []
    for item in items:
        tile = {"mgrs:utm_zone": 36, "mgrs:latitude_band": "K", "mgrs:grid_square": "VD"}
        first = {**item, "properties": {**item["properties"], **tile, "s2:processing_baseline": "04.00"}}
        again = {
            **first,
            "id": f"{item['id']}_R",
            "properties": {**first["properties"], "s2:processing_baseline": "05.09"},
        }
        listed += [first, again]
    return listed


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> RecordingServer:
    """The STAC APIs: ``/stac/v1`` (good), ``/no-scl/v1``, ``/hostile/v1``, ``/no-search/v1``; ``/scenes/`` files."""
    server = RecordingServer(log_dir=tmp_path_factory.mktemp("api"))
    items = demo_items(server.url)
    server.routes.update({f"/scenes/{path.name}": path.read_bytes() for path in DEMO_SCENES.glob("*.tif")})
    server.routes.update(stac_api(f"{server.url}/stac/v1", items))
    no_scl = [{**item, "assets": {k: v for k, v in item["assets"].items() if k != "scl"}} for item in items]
    server.routes.update(stac_api(f"{server.url}/no-scl/v1", no_scl))
    hostile = [{**item, "assets": {**item["assets"], "scl": {"href": "/etc/passwd"}}} for item in items]
    server.routes.update(stac_api(f"{server.url}/hostile/v1", hostile))
    server.routes.update(stac_api(f"{server.url}/no-search/v1", items, conforms_to=CONFORMS_TO[:1]))
    metadata = "http://169.254.169.254/latest/meta-data/scl.tif"  # a cloud metadata service, never to be asked
    to_metadata = [{**item, "assets": {**item["assets"], "scl": {"href": metadata}}} for item in items]
    server.routes.update(stac_api(f"{server.url}/metadata/v1", to_metadata))
    server.routes.update(stac_api(f"{server.url}/reprocessed/v1", reprocessed(items)))
    server.routes["/not-stac"] = lambda *a: (200, "text/html", b"<html>a web page</html>")
    # the Planetary Computer's way: assets in storage that wants a SAS token, from the API's token route
    server.routes.update({f"/blob/{path.name}": path.read_bytes() for path in DEMO_SCENES.glob("*.tif")})
    server.tokens["/blob/"] = SAS_TOKEN
    in_blobs = [
        {
            **item,
            "assets": {k: {**a, "href": a["href"].replace("/scenes/", "/blob/")} for k, a in item["assets"].items()},
        }
        for item in items
    ]
    server.routes.update(stac_api(f"{server.url}/pc/v1", in_blobs))
    # the same storage refusing every read past the first 60 kB: a file's directory (at its end) cannot be read
    server.routes.update({f"/late-blob/{path.name}": path.read_bytes() for path in DEMO_SCENES.glob("*.tif")})
    server.tokens["/late-blob/"] = SAS_TOKEN
    server.refuse_ranges_from["/late-blob/"] = 60_000
    late = [
        {
            **item,
            "assets": {k: {**a, "href": a["href"].replace("/blob/", "/late-blob/")} for k, a in item["assets"].items()},
        }
        for item in in_blobs
    ]
    server.routes.update(stac_api(f"{server.url}/pc-late/v1", late))
    token = {"msft:expiry": "2026-11-29T12:00:00Z", "token": SAS_TOKEN}
    server.routes[f"/api/sas/v1/token/{COLLECTION}"] = lambda *a: (200, "application/json", json.dumps(token).encode())
    other = [{**item, "collection": "other-collection"} for item in in_blobs]  # no token route: 404
    server.routes.update(stac_api(f"{server.url}/pc-other/v1", other))
    busy = [{**item, "collection": "busy-collection"} for item in in_blobs]  # its token route answers 503 once
    server.routes.update(stac_api(f"{server.url}/pc-busy/v1", busy))
    answers = [(503, "text/plain", b"busy")]
    server.routes["/api/sas/v1/token/busy-collection"] = lambda *a: (
        answers.pop() if answers else (200, "application/json", json.dumps(token).encode())
    )
    with server:
        yield server


@pytest.fixture
def offline():
    """GDAL's offline policy, as ``app.main`` applies it, and no proxy of the machine's in the way."""
    with preserved_environment():
        for key in PROXY_VARIABLES + tuple(OFFLINE_GDAL_CONFIG):
            os.environ.pop(key, None)
        apply_offline_policy()
        yield


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "activity"
    build_activity(DEMO_SCENES, out, periods=["2021"], baseline="2020")
    return out


def read_scores(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read(1)


def one_error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0, error
    return error


def test_build_from_the_api_url_gives_the_rasters_of_the_local_folder(api, offline, local_build, tmp_path, capsys):
    url = f"{api.url}/stac/v1"
    out = tmp_path / "remote"
    args = ["--scenes", url, "--bbox", BBOX, "--baseline", "2020", "--periods", "2021", "--out", str(out), "--quiet"]
    assert run_cli(args) == 0, capsys.readouterr().err
    assert offline_policy_applied()
    assert read_scores(out / "2021.tif").shape == (300, 300)
    np.testing.assert_array_equal(read_scores(out / "2021.tif"), read_scores(local_build / "2021.tif"))
    with rasterio.open(out / "2021.tif") as dataset:
        assert dataset.tags()["MINEWATCH_SYNTHETIC"] == "yes"
    item = json.loads((out / "activity-2021" / "activity-2021.json").read_text())
    local_item = json.loads((local_build / "activity-2021" / "activity-2021.json").read_text())
    for key in ("minewatch:input_scenes", "minewatch:baseline_scenes"):
        assert item["properties"][key] == local_item["properties"][key]
    assert item["properties"]["minewatch:scene_search"] == {
        "stac_api": url,
        "collection": COLLECTION,
        "bbox": [32.2, -19.7, 32.4, -19.5],
        "datetime": "2020-01-01T00:00:00Z/2021-12-31T23:59:59Z",
        "max_cloud": None,
    }
    searches = [(method, path) for method, path, _ in api.requests if "/stac/v1/search" in path]
    assert searches and all(method == "POST" for method, _ in searches) and len(searches) == 3  # 10 items, pages of 4
    scene_reads = [(method, path, wanted) for method, path, wanted in api.requests if path.startswith("/scenes/")]
    assert all(method != "GET" or wanted for method, _, wanted in scene_reads)  # window by window, never whole
    read = {path.rsplit("/", 1)[1].split("_")[3] for _, path, _ in scene_reads}
    assert read == {"B02", "B03", "B04", "B08", "B11", "SCL"}  # B12 and the preview never fetched
    assert not any("2022" in path for _, path, _ in scene_reads)  # only what the search asked for


def test_max_cloud_is_searched_and_checked(api, offline):
    query = SceneQuery(bbox=(32.2, -19.7, 32.4, -19.5), datetime="2020-01-01/2020-12-31", max_cloud=5.0)
    scenes = find_scenes(f"{api.url}/stac/v1", query)
    assert [s.date.isoformat() for s in scenes] == ["2020-05-25", "2020-08-15"]  # 2.7 % and 1.5 % cloud
    assert all(s.band("B04").remote and s.band("B04").path.startswith("/vsicurl/http://127.0.0.1") for s in scenes)
    assert scenes[0].band("B04").scale == pytest.approx(1e-4) and scenes[0].band("B04").offset == pytest.approx(-0.1)


def test_a_reprocessed_acquisition_is_used_once_in_its_latest_processing(api, offline):
    query = SceneQuery(bbox=(32.2, -19.7, 32.4, -19.5), datetime="2021-01-01/2021-12-31")
    scenes = find_scenes(f"{api.url}/reprocessed/v1", query)
    plain = find_scenes(f"{api.url}/stac/v1", query)
    assert [s.scene_id for s in scenes] == [f"{s.scene_id}_R" for s in plain] and len(plain) == 5


def test_an_unreachable_api_is_one_line_naming_it(offline, tmp_path, capsys):
    with RecordingServer(log_dir=tmp_path) as gone:
        url = f"{gone.url}/stac/v1"
    code = run_cli(["--scenes", url, "--bbox", BBOX, "--datetime", "2021", "--out", str(tmp_path / "o"), "--quiet"])
    error = one_error_line(capsys)
    assert code == 2 and f"STAC API {url}: cannot be reached: connection refused" in error
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("root", "options", "expected"),
    [
        ("/stac/v1", ["--datetime", "2019-01-01/2019-12-31"], "found no items"),
        ("/stac/v1", ["--datetime", "2021-01-01/2021-12-31", "--max-cloud", "0"], "found no items"),
        ("/no-scl/v1", ["--datetime", "2021-06-01/2021-12-31"], ": lacks SCL (has B02, B03, B04, B08, B11); every"),
        ("/hostile/v1", ["--datetime", "2021-06-01/2021-12-31"], "asset scl is /etc/passwd, not an http(s) URL"),
        (
            "/metadata/v1",
            ["--datetime", "2021-06-01/2021-12-31"],
            "asset scl is on 169.254.169.254 (a link-local address (where cloud metadata services answer)), more "
            "private than the STAC API's host 127.0.0.1",
        ),
        ("/no-search/v1", ["--datetime", "2021"], "offers no item search"),
        ("/not-stac", ["--datetime", "2021"], "is not a STAC API landing page"),
        ("/missing/v1", ["--datetime", "2021"], "is not a STAC API landing page (HTTP 404)"),
        ("/stac/v1", ["--datetime", "2020-01-01/2022-12-31", "--max-items", "12"], "finds more than 12 items"),
        ("/stac/v1", [], "give --datetime START/END for the search"),
        ("/stac/v1", ["--datetime", "2021-13-45"], "--datetime 2021-13-45: give a date or an interval"),
    ],
)
def test_bad_searches_are_one_line_naming_the_api_and_the_problem(
    api, offline, tmp_path, capsys, root, options, expected
):
    url = f"{api.url}{root}"
    code = run_cli(["--scenes", url, "--bbox", BBOX, *options, "--out", str(tmp_path / "o"), "--quiet"])
    error = one_error_line(capsys)
    assert code == 2 and url in error and expected in error, error
    assert not (tmp_path / "o").exists()


def test_search_options_need_a_url_and_a_url_needs_a_bbox(api, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert run_cli(["--scenes", str(DEMO_SCENES), "--datetime", "2021", "--out", out, "--quiet"]) == 2
    assert "--datetime apply to a STAC API URL only" in one_error_line(capsys)
    assert run_cli(["--scenes", f"{api.url}/stac/v1", "--datetime", "2021", "--out", out, "--quiet"]) == 2
    assert "give --bbox WEST,SOUTH,EAST,NORTH" in one_error_line(capsys)
    assert run_cli(["--scenes", f"{api.url}/stac/v1", "--bbox", "32.4,-19.7,32.2", "--out", out, "--quiet"]) == 2
    assert "--bbox 32.4,-19.7,32.2: give WEST,SOUTH,EAST,NORTH" in one_error_line(capsys)
    assert run_cli(["--scenes", str(DEMO_SCENES), "--exact-bbox", "--out", out, "--quiet"]) == 2
    assert "--exact-bbox needs --bbox" in one_error_line(capsys)
    for url in ("s3://bucket/stac", "/vsicurl/http://127.0.0.1:1/stac"):  # only http(s) API URLs
        assert run_cli(["--scenes", url, "--bbox", BBOX, "--out", out, "--quiet"]) == 2
        assert "GDAL virtual paths and URLs are not accepted" in one_error_line(capsys)


def test_a_bbox_crops_a_local_build_too(tmp_path):
    bbox = (32.30, -19.64, 32.32, -19.63)
    query = SceneQuery(bbox=bbox, exact_bbox=True)
    (path,) = build_activity(DEMO_SCENES, tmp_path / "crop", periods=["2021"], baseline="2020", query=query)
    with rasterio.open(path) as dataset:
        west, south, east, north = rasterio.warp.transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
        assert dataset.width < 300 and dataset.height < 300 and dataset.res == (10.0, 10.0)
    assert west >= 32.30 - 1e-3 and east <= 32.32 + 1e-3 and south >= -19.64 - 1e-3 and north <= -19.63 + 1e-3
    with pytest.raises(InputError, match="no scene covers --bbox 10,10,11,11"):
        find_scenes(DEMO_SCENES, SceneQuery(bbox=(10, 10, 11, 11)))


def test_a_crop_starts_on_a_corner_of_the_files_blocks_and_scores_as_the_exact_crop(tmp_path):
    """By default the crop's grid starts on a block corner of the band files (the demo's: 256 pixels), up to one
    block west and north of the bbox, so that the tiles line up with the blocks GDAL decodes. Only the bbox is
    read and scored: the scores there are the exact crop's, the pixels around it nodata."""
    bbox = (32.31, -19.645, 32.325, -19.632)  # about 100 pixels east and 60 south of the files' corner
    builds = {
        exact: build_activity(
            DEMO_SCENES, tmp_path / str(exact), ["2021"], "2020", query=SceneQuery(bbox=bbox, exact_bbox=exact)
        )[0]
        for exact in (True, False)
    }
    with rasterio.open(next(DEMO_SCENES.glob("*_B04_10m.tif"))) as band:
        files_left, files_top = band.transform.c, band.transform.f
        block_rows, block_cols = band.block_shapes[0]
    with rasterio.open(builds[True]) as exact, rasterio.open(builds[False]) as snapped:
        assert (block_rows, block_cols) == (256, 256)  # the builds' 512-pixel tiles each hold 2 x 2 of them
        assert snapped.bounds.right == exact.bounds.right and snapped.bounds.bottom == exact.bounds.bottom
        west_px = round((exact.bounds.left - snapped.bounds.left) / 10)
        north_px = round((snapped.bounds.top - exact.bounds.top) / 10)
        assert 0 < west_px < block_cols and 0 < north_px < block_rows  # this bbox starts inside a block
        assert round((snapped.bounds.left - files_left) / 10) % block_cols == 0
        assert round((files_top - snapped.bounds.top) / 10) % block_rows == 0
        scores, nodata = snapped.read(1), snapped.nodata
        exact_scores = exact.read(1)
    np.testing.assert_array_equal(scores[north_px:, west_px:], exact_scores)
    assert (exact_scores >= 0).mean() > 0.5 and (exact_scores >= 0.5).any()  # seen pixels, and pits
    assert (scores[:north_px] == nodata).all() and (scores[:, :west_px] == nodata).all()
    (small_tiles,) = build_activity(
        DEMO_SCENES, tmp_path / "64", ["2021"], "2020", query=SceneQuery(bbox=bbox), tile_px=64
    )  # the first tiles lie wholly outside the bbox
    np.testing.assert_array_equal(read_scores(small_tiles), scores)
    with open(builds[False].parent / "activity-2021" / "activity-2021.json") as file:
        item = json.load(file)
    exact_bounds = rasterio.warp.transform_bounds(exact.crs, "EPSG:4326", *exact.bounds)
    assert item["bbox"] == pytest.approx(exact_bounds, abs=1e-6)  # the footprint of the data: the exact crop's
    assert item["properties"]["minewatch:bbox"] == list(bbox)
    assert item["properties"]["minewatch:data_window"] == [west_px, north_px, exact.width, exact.height]
    with open(builds[True].parent / "activity-2021" / "activity-2021.json") as file:
        exact_item = json.load(file)["properties"]
    assert exact_item["minewatch:bbox"] == list(bbox) and "minewatch:data_window" not in exact_item


def build_args(url: str, out: Path, *more: str) -> list[str]:
    return [
        "--scenes",
        url,
        "--bbox",
        BBOX,
        "--baseline",
        "2020",
        "--periods",
        "2021",
        "--out",
        str(out),
        "--quiet",
        *more,
    ]


def test_planetary_computer_assets_are_read_with_one_token_per_collection(api, offline, local_build, tmp_path, capsys):
    before = len(api.requests)
    out = tmp_path / "signed"
    args = [
        arg for arg in build_args(f"{api.url}/pc/v1", out, "--sign-assets", "planetary-computer") if arg != "--quiet"
    ]
    assert run_cli(args) == 0, capsys.readouterr()
    assert "signed with Planetary Computer tokens" in capsys.readouterr().err
    np.testing.assert_array_equal(read_scores(out / "2021.tif"), read_scores(local_build / "2021.tif"))
    requests = [path for _, path, _ in api.requests[before:]]
    assert [p for p in requests if p.startswith("/api/sas/")] == [f"/api/sas/v1/token/{COLLECTION}"]  # once
    blob_reads = [p for p in requests if p.startswith("/blob/")]
    assert blob_reads and all(p.endswith("?" + SAS_TOKEN) for p in blob_reads)
    written = "".join(p.read_text() for p in out.rglob("*.json"))
    assert "sig=" not in written and "/blob/" not in written  # no token, nor asset URL, in the provenance


def test_unsigned_assets_fail_in_one_line_and_auto_signs_only_the_planetary_computer(api, offline, tmp_path, capsys):
    out = tmp_path / "unsigned"
    assert run_cli(build_args(f"{api.url}/pc/v1", out)) == 2  # auto: 127.0.0.1 is not the Planetary Computer
    error = one_error_line(capsys)
    assert "403" in error and "/blob/" in error and "--sign-assets" in error and "sig=" not in error, error
    assert not out.exists()


def test_gdal_naming_a_signed_file_in_its_error_does_not_put_the_token_in_the_message(api, offline, tmp_path, capsys):
    out = tmp_path / "late"
    assert run_cli(build_args(f"{api.url}/pc-late/v1", out, "--sign-assets", "planetary-computer")) == 2
    error = one_error_line(capsys)
    # GDAL says "<name>.tif?<token>: TIFFReadDirectory:Failed to read directory at offset ..."
    assert "/late-blob/" in error and "TIFFReadDirectory" in error, error
    assert "sig=" not in error and "st=2026" not in error, error
    assert not out.exists()


def test_a_token_that_cannot_be_had_is_one_line_naming_the_collection(api, offline, tmp_path, capsys):
    out = tmp_path / "no-token"
    args = build_args(
        f"{api.url}/pc-other/v1", out, "--collection", "other-collection", "--sign-assets", "planetary-computer"
    )
    assert run_cli(args) == 2
    error = one_error_line(capsys)
    assert "Planetary Computer token for collection other-collection" in error and "HTTP 404" in error, error
    assert not out.exists()


def test_which_apis_are_signed_and_how_an_href_is_signed():
    from layers.asset_signing import PLANETARY_COMPUTER, signed_href, signing_for

    assert signing_for("https://planetarycomputer.microsoft.com/api/stac/v1", "auto") == PLANETARY_COMPUTER
    assert signing_for("https://earth-search.aws.element84.com/v1", "auto") is None
    assert signing_for("https://earth-search.aws.element84.com/v1", "planetary-computer") == PLANETARY_COMPUTER
    assert signing_for("https://planetarycomputer.microsoft.com/api/stac/v1", "none") is None
    with pytest.raises(InputError, match="--sign-assets"):
        signing_for("https://planetarycomputer.microsoft.com/api/stac/v1", "always")
    blob = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/36/K/VD/B04.tif"
    assert signed_href(blob, "se=1&sig=x") == blob + "?se=1&sig=x"
    assert signed_href(blob + "?v=2", "se=1&sig=x") == blob + "?v=2&se=1&sig=x"
    assert signed_href(blob + "?se=1&sig=x", "se=2&sig=y") == blob + "?se=1&sig=x"  # signed already: kept


def test_a_busy_token_api_is_asked_again_as_the_search_would_be(api, offline, tmp_path, capsys):
    before = len(api.requests)
    args = build_args(f"{api.url}/pc-busy/v1", tmp_path / "busy", "--collection", "busy-collection")
    assert run_cli([*args, "--sign-assets", "planetary-computer"]) == 0, capsys.readouterr().err
    asked = [path for _, path, _ in api.requests[before:] if path.startswith("/api/sas/")]
    assert asked == ["/api/sas/v1/token/busy-collection"] * 2  # 503, then the token
