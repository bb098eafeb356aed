"""layers.sentinel2: finding band files by name or STAC, reading them on one 10 m grid, bad input.

Data: tiny Level-2A-like band files (4 x 4 pixels at 10 m, 2 x 2 at 20 m) written into
``tmp_path`` in WGS 84 / UTM 36S, with digital numbers chosen so reflectances are easy
to check; a STAC ItemCollection written with pystac.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window

from geo.errors import CRSError, InputError
from layers.sentinel2 import (
    BandFile,
    Scene,
    SceneQuery,
    block_corner,
    close_kept_files,
    find_scenes,
    keep_files_open,
    open_band,
    output_grid,
    parse_band_order,
    read_reflectance,
    read_scl,
)

UTM = "EPSG:32736"
ORIGIN = (500_000.0, 7_900_000.0)
BANDS_10M = ("B02", "B03", "B04", "B08")
BANDS_20M = ("B11", "B12", "SCL")


def write_band(path: Path, values: np.ndarray, pixel_m: float = 10.0, crs=UTM, origin=ORIGIN, **options) -> Path:
    """A one-band GeoTIFF (or JP2 by suffix); ``options`` go to rasterio (nodata, count...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = options.pop("tags", {})
    scales = options.pop("scales", None)
    offsets = options.pop("offsets", None)
    data = values if values.ndim == 3 else values[None]
    profile = dict(
        driver="JP2OpenJPEG" if path.suffix == ".jp2" else "GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype.name,
        crs=crs,
        transform=from_origin(*origin, pixel_m, pixel_m) if crs is not None else None,
    )
    profile.update(options)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
        if tags:
            dataset.update_tags(**tags)
        if scales:
            dataset.scales = scales
        if offsets:
            dataset.offsets = offsets
    return path


def dn_10m(value: int) -> np.ndarray:
    return np.full((4, 4), value, dtype=np.uint16)


def write_scene(folder: Path, name: str = "T36KVD_20210615T073621", skip=(), suffix=".tif", **tags) -> None:
    """One scene in the SAFE file naming: ``<name>_<band>_<res>m<suffix>``; B04 holds 1..16 x 100."""
    for band in BANDS_10M:
        if band in skip:
            continue
        values = (np.arange(1, 17, dtype=np.uint16).reshape(4, 4) * 100) if band == "B04" else dn_10m(2000)
        write_band(folder / f"{name}_{band}_10m{suffix}", values, tags=tags)
    for band in BANDS_20M:
        if band in skip:
            continue
        values = (
            np.array([[4, 9], [5, 3]], dtype=np.uint8)
            if band == "SCL"
            else np.array([[1000, 2000], [3000, 4000]], dtype=np.uint16)
        )
        write_band(folder / f"{name}_{band}_20m{suffix}", values, pixel_m=20.0, tags=tags)


def test_safe_style_names_give_one_scene_with_every_band(tmp_path):
    write_scene(tmp_path, MINEWATCH_SYNTHETIC="yes")
    write_scene(tmp_path, name="T36KVD_20210801T073621")
    scenes = find_scenes(tmp_path)
    assert [(s.scene_id, s.date) for s in scenes] == [
        ("T36KVD_20210615T073621", dt.date(2021, 6, 15)),
        ("T36KVD_20210801T073621", dt.date(2021, 8, 1)),
    ]
    assert sorted(scenes[0].bands) == ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
    assert scenes[0].synthetic and not scenes[1].synthetic
    assert scenes[0].band("B04").scale == pytest.approx(1e-4) and scenes[0].band("B04").offset == 0.0


def test_a_folder_per_date_with_common_band_names(tmp_path):
    day = tmp_path / "2022-01-20"
    for name in ("blue", "green", "red", "nir"):
        write_band(day / f"{name}.tif", dn_10m(1500))
    write_band(day / "swir16.tif", np.full((2, 2), 2500, np.uint16), pixel_m=20.0)
    write_band(day / "scl.tif", np.full((2, 2), 4, np.uint8), pixel_m=20.0)
    write_band(day / "TCI.tif", dn_10m(1))  # not a band of ours: skipped
    (scene,) = find_scenes(tmp_path)
    assert scene.date == dt.date(2022, 1, 20) and scene.scene_id == "2022-01-20"
    assert set(scene.bands) == {"B02", "B03", "B04", "B08", "B11", "SCL"}


def test_twenty_metre_bands_are_repeated_onto_the_ten_metre_grid(tmp_path):
    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)
    grid = output_grid([scene])
    assert (grid.width, grid.height, grid.transform.a) == (4, 4, 10.0)
    swir = read_reflectance(scene.band("B11"), grid, Window(0, 0, 4, 4))
    expected = np.repeat(np.repeat(np.array([[0.1, 0.2], [0.3, 0.4]]), 2, 0), 2, 1)
    np.testing.assert_allclose(swir, expected, rtol=1e-6)
    scl = read_scl(scene.band("SCL"), grid, Window(1, 1, 2, 2))
    assert scl.tolist() == [[4, 9], [5, 3]]  # the window straddles all four 20 m pixels
    red = read_reflectance(scene.band("B04"), grid, Window(2, 1, 2, 2))
    np.testing.assert_allclose(red, [[0.07, 0.08], [0.11, 0.12]], rtol=1e-6)


def test_window_beyond_the_file_is_nan_and_scl_nodata(tmp_path):
    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)
    grid = output_grid([scene])
    red = read_reflectance(scene.band("B04"), grid, Window(3, 3, 2, 2))
    assert red[0, 0] == pytest.approx(0.16) and np.isnan(red[1]).all() and np.isnan(red[:, 1]).all()
    assert read_scl(scene.band("SCL"), grid, Window(3, 3, 2, 2)).tolist() == [[3, 0], [0, 0]]


def test_digital_number_zero_is_no_data(tmp_path):
    write_scene(tmp_path)
    path = next(tmp_path.glob("*_B04_10m.tif"))
    values = np.arange(1, 17, dtype=np.uint16).reshape(4, 4) * 100
    values[0, 0] = 0
    write_band(path, values)
    (scene,) = find_scenes(tmp_path)
    red = read_reflectance(scene.band("B04"), output_grid([scene]), Window(0, 0, 2, 1))
    assert np.isnan(red[0, 0]) and red[0, 1] == pytest.approx(0.02)


def test_scale_and_offset_from_the_file_or_from_a_safe_metadata_file(tmp_path):
    write_scene(tmp_path / "tagged")
    path = next((tmp_path / "tagged").glob("*_B04_10m.tif"))
    write_band(path, dn_10m(1500), scales=(1e-4,), offsets=(-0.1,))
    (scene,) = find_scenes(tmp_path / "tagged")
    assert read_reflectance(scene.band("B04"), output_grid([scene]), Window(0, 0, 1, 1))[0, 0] == pytest.approx(0.05)

    safe = tmp_path / "S2B_MSIL2A_20220120T073209_N0400_R049_T36KVD_20220120T100000.SAFE"
    write_scene(safe / "GRANULE" / "L2A_T36KVD" / "IMG_DATA" / "R10m", name="T36KVD_20220120T073209")
    (safe / "MTD_MSIL2A.xml").write_text(
        "<BOA_QUANTIFICATION_VALUE unit='none'>10000</BOA_QUANTIFICATION_VALUE>"
        '<BOA_ADD_OFFSET band_id="3">-1000</BOA_ADD_OFFSET><BOA_ADD_OFFSET band_id="1">-1000</BOA_ADD_OFFSET>'
    )
    (scene,) = find_scenes(safe)
    assert (scene.band("B04").scale, scene.band("B04").offset) == pytest.approx((1e-4, -0.1))
    assert scene.band("B03").offset == 0.0  # band_id 2 has no offset in this file


def test_the_finest_of_several_resolutions_is_used(tmp_path):
    granule = tmp_path / "IMG_DATA"
    write_scene(granule / "R10m")
    write_band(granule / "R20m" / "T36KVD_20210615T073621_B02_20m.tif", np.full((2, 2), 9999, np.uint16), pixel_m=20.0)
    (scene,) = find_scenes(tmp_path)
    assert scene.band("B02").path.endswith("_B02_10m.tif")


def test_jpeg2000_bands_are_read_like_geotiffs(tmp_path):
    write_scene(tmp_path, suffix=".jp2", QUALITY="100", REVERSIBLE="YES")
    (scene,) = find_scenes(tmp_path)
    assert scene.band("B04").path.endswith(".jp2")
    red = read_reflectance(scene.band("B04"), output_grid([scene]), Window(0, 0, 4, 4))
    np.testing.assert_allclose(red, np.arange(1, 17).reshape(4, 4) * 0.01, rtol=1e-6)


def test_a_band_file_knows_the_width_of_the_blocks_gdal_decodes_it_in(tmp_path):
    values = np.full((320, 1200), 2000, dtype=np.uint16)
    # JPEG 2000 tiles of 256 pixels: GDAL decodes whole rows of them, up to 1024 pixels wide
    tiles = dict(QUALITY="100", REVERSIBLE="YES", BLOCKXSIZE=256, BLOCKYSIZE=256)
    write_band(tmp_path / "T36KVD_20210615_B04_10m.jp2", values, **tiles)
    write_band(tmp_path / "T36KVD_20210615_B08_10m.tif", values, tiled=True, blockxsize=32, blockysize=32)
    for band in ("B02", "B03"):  # strips: blocks as wide as the file
        write_band(tmp_path / f"T36KVD_20210615_{band}_10m.tif", values)
    for band in BANDS_20M:
        write_band(tmp_path / f"T36KVD_20210615_{band}_20m.tif", values[::2, ::2].astype(np.uint8), pixel_m=20.0)
    (scene,) = find_scenes(tmp_path)
    assert scene.band("B04").block_shape == (256, 1024) and scene.band("B08").block_shape == (32, 32)
    rows, columns = scene.band("B03").block_shape
    assert columns == 1200 and rows < 64


def test_a_scene_in_another_crs_is_warped_onto_the_grid(tmp_path):
    write_scene(tmp_path / "a")
    write_scene(tmp_path / "b", name="T36KVD_20210701T073621")
    from pyproj import Transformer

    x, y = Transformer.from_crs(UTM, "EPSG:32735", always_xy=True).transform(*ORIGIN)
    for band in BANDS_10M:  # the third scene: the same ground in UTM zone 35S
        write_band(
            tmp_path / "c" / f"T35KQU_20210801T073621_{band}_10m.tif", dn_10m(3000), crs="EPSG:32735", origin=(x, y)
        )
    for band in BANDS_20M:
        values = np.full((2, 2), 4 if band == "SCL" else 3000, np.uint8 if band == "SCL" else np.uint16)
        write_band(tmp_path / "c" / f"T35KQU_20210801T073621_{band}_20m.tif", values, 20.0, "EPSG:32735", (x, y))
    scenes = find_scenes(tmp_path)
    grid = output_grid(scenes)
    assert grid.crs.to_epsg() == 32736  # two of three scenes
    other = next(s for s in scenes if s.scene_id.startswith("T35"))
    red = read_reflectance(other.band("B04"), grid, Window(0, 0, grid.width, grid.height))
    assert np.nanmax(red) == pytest.approx(0.3) and np.isfinite(red).sum() >= 4


def test_stac_item_collection_with_common_asset_keys_and_raster_scale(tmp_path):
    write_scene(tmp_path / "files")
    files = {p.name.split("_")[2]: p for p in (tmp_path / "files").glob("*.tif")}
    item = pystac.Item("S2A_36KVD_20210615_0_L2A", None, None, dt.datetime(2021, 6, 15, 7, 36, tzinfo=dt.UTC), {})
    keys = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
    for band, key in keys.items():
        extra = {"raster:bands": [{"scale": 0.0001, "offset": -0.1}]} if band != "SCL" else {}
        item.add_asset(key, pystac.Asset(str(files[band]), extra_fields=extra))
    collection = pystac.ItemCollection([item])
    collection.save_object(dest_href=str(tmp_path / "items.json"))
    (scene,) = find_scenes(tmp_path / "items.json")
    assert scene.scene_id == "S2A_36KVD_20210615_0_L2A" and scene.date == dt.date(2021, 6, 15)
    assert (scene.band("B04").scale, scene.band("B04").offset) == pytest.approx((1e-4, -0.1))


def test_stac_asset_that_is_a_url_is_refused_with_the_item_named(tmp_path):
    item = pystac.Item("remote", None, None, dt.datetime(2021, 6, 15, tzinfo=dt.UTC), {})
    item.add_asset("red", pystac.Asset("https://example.invalid/B04.tif?se=2026&sig=secret"))  # a signed URL
    pystac.ItemCollection([item]).save_object(dest_href=str(tmp_path / "items.json"))
    with pytest.raises(
        InputError, match=r"item remote: asset red is https://example.invalid/B04.tif, not a local"
    ) as e:
        find_scenes(tmp_path / "items.json")
    assert "sig=" not in str(e.value)  # its token is not repeated


def test_a_scene_missing_bands_is_refused_naming_them(tmp_path):
    write_scene(tmp_path, skip=("B11", "SCL"))
    with pytest.raises(InputError, match=r"scene T36KVD_20210615T073621 \(2021-06-15\): lacks B11, SCL"):
        find_scenes(tmp_path)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_band_without_crs_is_refused_naming_the_file(tmp_path):
    write_scene(tmp_path)
    path = next(tmp_path.glob("*_B08_10m.tif"))
    write_band(path, dn_10m(10), crs=None)
    with pytest.raises(CRSError, match=path.name):
        find_scenes(tmp_path)


def test_unreadable_and_multiband_files_are_refused_naming_the_file(tmp_path):
    write_scene(tmp_path)
    broken = next(tmp_path.glob("*_B03_10m.tif"))
    broken.write_bytes(b"not a tiff")
    with pytest.raises(InputError, match=f"{broken.name}: does not hold GeoTIFF data"):
        find_scenes(tmp_path)
    broken.write_bytes(b"II*\x00 then nothing a TIFF needs")  # a TIFF's first bytes, a broken rest
    with pytest.raises(InputError, match=f"{broken.name}: cannot be read as a raster"):
        find_scenes(tmp_path)
    broken.unlink()  # GDAL would try to read the broken file before replacing it
    write_band(broken, np.stack([dn_10m(1), dn_10m(2)]))
    with pytest.raises(InputError, match=f"{broken.name}: has 2 bands"):
        find_scenes(tmp_path)


def test_no_band_files_or_no_date_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no Sentinel-2 band files found"):
        find_scenes(tmp_path / "empty")
    write_band(tmp_path / "undated" / "B04.tif", dn_10m(1))
    with pytest.raises(InputError, match="no acquisition date"):
        find_scenes(tmp_path / "undated")
    with pytest.raises(InputError, match="no such file"):
        find_scenes(tmp_path / "missing")


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning:rioxarray")
def test_open_band_is_lazy_and_chunked(tmp_path):
    import dask.array

    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)
    lazy = open_band(scene.band("B04"), chunks=2)
    assert isinstance(lazy.data, dask.array.Array)
    assert lazy.data.chunks == ((2, 2), (2, 2))
    assert int(lazy[2:4, 2:4].sum().compute()) == (11 + 12 + 15 + 16) * 100
    assert lazy.rio.crs.to_epsg() == 32736


# ----------------------------------------------------------------------------- multi-band files

STACK_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")


def stack_values(dtype=np.uint16) -> np.ndarray:
    """Seven 4 x 4 bands: band i holds (i + 1) * 1000 + pixel number, the SCL (last) 4 (vegetation)."""
    values = np.stack([np.arange(16).reshape(4, 4) + (i + 1) * 1000 for i in range(7)]).astype(dtype)
    values[6] = 4
    return values


def write_stack(path: Path, values: np.ndarray, descriptions=None, **options) -> Path:
    write_band(path, values, **options)
    if descriptions:
        with rasterio.open(path, "r+") as dataset:
            dataset.descriptions = tuple(descriptions)
    return path


def test_a_multi_band_file_named_by_band_descriptions_is_a_scene(tmp_path):
    write_stack(tmp_path / "T36KVD_20210615.tif", stack_values(), STACK_BANDS, tags={"MINEWATCH_SYNTHETIC": "yes"})
    write_band(tmp_path / "T36KVD_20210615_TCI.tif", np.zeros((3, 4, 4), np.uint8))  # a 3-band preview: skipped
    (scene,) = find_scenes(tmp_path)
    assert scene.scene_id == "T36KVD_20210615" and scene.date == dt.date(2021, 6, 15) and scene.synthetic
    assert {name: band.index for name, band in scene.bands.items()} == {b: i + 1 for i, b in enumerate(STACK_BANDS)}
    grid = output_grid([scene])
    red = read_reflectance(scene.band("B04"), grid, Window(0, 0, 4, 4))
    np.testing.assert_allclose(red, (3000 + np.arange(16).reshape(4, 4)) / 10_000, rtol=1e-6)
    assert (read_scl(scene.band("SCL"), grid, Window(1, 1, 2, 2)) == 4).all()
    lazy = open_band(scene.band("B08"), chunks=2)
    assert int(lazy[0, 0].compute()) == 4000


def test_earth_engine_band_names_and_float_classes_in_a_stack(tmp_path):
    values = stack_values(np.float32) / np.float32(10_000)
    values[6] = 8  # cloud, stored as a float class as float exports do
    write_stack(tmp_path / "2021-06-15" / "export.tif", values, ("B2", "B3", "B4", "B8", "B11", "B12", "SCL"))
    (scene,) = find_scenes(tmp_path)
    assert scene.scene_id == "2021-06-15" and scene.band("SCL").index == 7
    grid = output_grid([scene])
    assert read_reflectance(scene.band("B02"), grid, Window(0, 0, 1, 1))[0, 0] == pytest.approx(0.1)
    assert read_scl(scene.band("SCL"), grid, Window(0, 0, 2, 2)).tolist() == [[8, 8], [8, 8]]


def test_band_order_names_the_bands_of_files_without_descriptions(tmp_path):
    write_stack(tmp_path / "T36KVD_20210615.tif", stack_values()[[0, 1, 2, 5, 3, 4, 6]])  # B12 moved third-last
    with pytest.raises(InputError, match="band descriptions or --band-order"):
        find_scenes(tmp_path)  # nothing names the bands: the file is skipped like a preview
    order = parse_band_order("b02,green,B04,-,nir,swir16,scl")  # '-' skips B12
    (scene,) = find_scenes(tmp_path, SceneQuery(band_order=order))
    assert {n: b.index for n, b in scene.bands.items()} == {"B02": 1, "B03": 2, "B04": 3, "B08": 5, "B11": 6, "SCL": 7}
    nir = read_reflectance(scene.band("B08"), output_grid([scene]), Window(0, 0, 1, 1))
    assert nir[0, 0] == pytest.approx(0.4)
    with pytest.raises(InputError, match="names a band twice"):
        parse_band_order("B02,B02,B04")
    with pytest.raises(InputError, match="unknown: B99"):
        parse_band_order("B02,B99")


def test_a_stack_and_a_separate_scl_file_make_one_scene(tmp_path):
    write_stack(tmp_path / "T36KVD_20210615_10m.tif", stack_values()[:6], STACK_BANDS[:6])
    write_band(tmp_path / "T36KVD_20210615_SCL_20m.tif", np.array([[4, 9], [5, 3]], np.uint8), pixel_m=20.0)
    (scene,) = find_scenes(tmp_path)
    assert scene.band("SCL").index == 1 and scene.band("SCL").pixel_m == 20.0 and scene.band("B11").index == 5
    assert read_scl(scene.band("SCL"), output_grid([scene]), Window(1, 1, 2, 2)).tolist() == [[4, 9], [5, 3]]


def test_a_stack_naming_a_band_twice_is_refused(tmp_path):
    write_stack(tmp_path / "T36KVD_20210615.tif", stack_values()[:3], ("B02", "B04", "red"))
    with pytest.raises(InputError, match="T36KVD_20210615.tif: its band descriptions name B04 more than once"):
        find_scenes(tmp_path)


def test_stac_asset_holding_several_bands_by_eo_bands(tmp_path):
    path = write_stack(tmp_path / "stack.tif", stack_values())
    item = pystac.Item("stacked", None, None, dt.datetime(2021, 6, 15, tzinfo=dt.UTC), {})
    eo_bands = [{"name": name} for name in STACK_BANDS]
    item.add_asset("data", pystac.Asset(str(path), extra_fields={"eo:bands": eo_bands}))
    pystac.ItemCollection([item]).save_object(dest_href=str(tmp_path / "items.json"))
    (scene,) = find_scenes(tmp_path / "items.json")
    assert scene.band("B11").index == 5 and scene.band("SCL").index == 7 and "B12" not in scene.bands


def test_a_band_file_that_is_a_vrt_in_disguise_is_refused(tmp_path):
    write_scene(tmp_path)
    target = next(tmp_path.glob("*_B04_10m.tif"))
    disguised = next(tmp_path.glob("*_B03_10m.tif"))
    disguised.write_text(
        f'<VRTDataset rasterXSize="4" rasterYSize="4"><VRTRasterBand dataType="UInt16" band="1"><SimpleSource>'
        f"<SourceFilename>{target}</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        "</VRTDataset>"
    )
    with pytest.raises(InputError, match=f"{disguised.name}: is a GDAL virtual dataset"):
        find_scenes(tmp_path)


def test_a_local_catalog_linking_to_urls_is_refused_without_a_request(tmp_path):
    import json
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    href = f"http://127.0.0.1:{listener.getsockname()[1]}/child.json"
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
               "links": [{"rel": "child", "href": href, "type": "application/json"}]}  # fmt: skip
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(InputError, match="child.json"):
        find_scenes(tmp_path / "catalog.json")
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody connected
    listener.close()


def reference_read(values: np.ndarray, band: BandFile, factor: int, shift: tuple[int, int], window: Window):
    """What the aligned reader must return, pixel by pixel: the file pixel under each grid pixel, its
    nodata rule (not the nodata value, not NaN; 0 for integers without one), ``DN * scale + offset`` in float32."""
    out = np.full((window.height, window.width), np.nan, dtype=np.float32)
    for i in range(window.height):
        for j in range(window.width):
            r = (window.row_off + i - shift[0]) // factor
            c = (window.col_off + j - shift[1]) // factor
            if not (0 <= r < values.shape[0] and 0 <= c < values.shape[1]):
                continue
            value = values[r, c]
            if band.integer:
                ok = value != (band.nodata if band.nodata is not None else 0)
            else:
                ok = np.isfinite(value) and (band.nodata is None or np.isnan(band.nodata) or value != band.nodata)
            if ok:
                out[i, j] = np.float32(value) * np.float32(band.scale) + np.float32(band.offset)
    return out


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("uint16", None), ("uint16", 65535), ("int16", -1), ("float32", None), ("float32", np.nan), ("float32", 0.1)],
)
@pytest.mark.parametrize("factor", [1, 2])
def test_aligned_reads_equal_a_pixel_by_pixel_reference(tmp_path, dtype, nodata, factor):
    """Windows inside, across the edge of and beyond a file whose lattice is shifted by (2, 1) grid pixels."""
    from layers.activity import Grid

    rng = np.random.default_rng(factor)
    values = rng.integers(0, 6, (7, 9)).astype(dtype)  # zeros included
    if nodata is not None and not np.isnan(nodata):
        values[rng.random(values.shape) < 0.2] = nodata
    if values.dtype.kind == "f":
        values[1, 1] = np.nan
        values[2, 2] = np.float32(0.1)  # equal to a float32 nodata of 0.1, not to the float64 0.1
    shift = (2, 1)
    origin = (ORIGIN[0] + 10.0 * shift[1], ORIGIN[1] - 10.0 * shift[0])
    path = write_band(tmp_path / "B04.tif", values, pixel_m=10.0 * factor, origin=origin, nodata=nodata)
    with rasterio.open(path) as dataset:
        transform, crs_wkt = dataset.transform, dataset.crs.to_wkt()
    integer = values.dtype.kind in "iu"
    band = BandFile(str(path), "B04", crs_wkt, transform, 9, 7, integer, nodata, scale=1e-4, offset=-0.1)
    grid = Grid(rasterio.crs.CRS.from_string(UTM), from_origin(*ORIGIN, 10.0, 10.0), 30, 30)
    for window in (Window(1, 2, 5, 4), Window(0, 0, 30, 30), Window(14, 9, 6, 8), Window(25, 25, 5, 5)):
        got = read_reflectance(band, grid, window)
        np.testing.assert_array_equal(got, reference_read(values, band, factor, shift, window), err_msg=str(window))
        if integer:
            classes = read_scl(band, grid, window)
            digital_numbers = reference_read(
                values, dataclasses.replace(band, scale=1.0, offset=0.0), factor, shift, window
            )
            np.testing.assert_array_equal(classes, np.nan_to_num(digital_numbers).astype(np.uint8))


def test_reads_reuse_open_files_across_sessions_until_the_file_changes(tmp_path, monkeypatch):
    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)
    grid, window = output_grid([scene]), Window(0, 0, 4, 4)
    opened = []
    real_open = rasterio.open

    def counting_open(path, mode="r", *args, **kwargs):  # counts the opens for reading
        opened.extend([Path(path).name.split("_")[-2]] if mode == "r" else [])
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    expected = read_reflectance(scene.band("B04"), grid, window)
    assert opened == ["B04"]  # outside a session: opened for the read
    with keep_files_open("build-1"):
        for _ in range(3):
            np.testing.assert_array_equal(read_reflectance(scene.band("B04"), grid, window), expected)
        read_scl(scene.band("SCL"), grid, window)
    with keep_files_open("build-1"):  # a later task of the same build
        read_reflectance(scene.band("B04"), grid, window)
    assert opened == ["B04", "B04", "SCL"]
    with keep_files_open("build-2"):  # another build of the same, unchanged files: still open
        np.testing.assert_array_equal(read_reflectance(scene.band("B04"), grid, window), expected)
    assert len(opened) == 3
    # B04 rewritten in place between two builds, and SCL replaced by another file under its name
    write_band(Path(scene.band("B04").path), np.full((4, 4), 5000, np.uint16))
    scl = Path(scene.band("SCL").path)
    write_band(scl.with_suffix(".new.tif"), np.full((2, 2), 6, np.uint8), pixel_m=20.0)
    os.replace(scl.with_suffix(".new.tif"), scl)
    with keep_files_open("build-3"):
        changed = read_reflectance(scene.band("B04"), grid, window)
        classes = read_scl(scene.band("SCL"), grid, window)
        read_reflectance(scene.band("B04"), grid, window)  # checked once a session: open from here on
    assert opened[3:] == ["B04", "SCL"]
    np.testing.assert_array_equal(changed, np.full((4, 4), 0.5, np.float32))
    assert (classes == 6).all()
    # a sidecar GDAL reads with the file (nodata, georeferencing): added, then edited in place
    aux = Path(scene.band("B04").path + ".aux.xml")
    pam = '<PAMDataset><PAMRasterBand band="1"><NoDataValue>{}</NoDataValue></PAMRasterBand></PAMDataset>'
    aux.write_text(pam.format(1))
    with keep_files_open("build-3b"):
        read_reflectance(scene.band("B04"), grid, window)
        read_reflectance(scene.band("B03"), grid, window)  # not kept since build-1: opened
    aux.write_text(pam.format(2))  # same folder, same names: only the sidecar itself tells
    with keep_files_open("build-3c"):
        read_reflectance(scene.band("B04"), grid, window)
    assert opened[5:] == ["B04", "B03", "B04"]
    close_kept_files()
    monkeypatch.setattr("layers.sentinel2.KEPT_OPEN_FILES", 1)
    with keep_files_open("build-4"):  # at most one file open: the least recently used is closed
        for name in ("B04", "B03", "B04"):
            read_reflectance(scene.band(name), grid, window)
    assert opened[-3:] == ["B04", "B03", "B04"]
    with keep_files_open("build-5"):  # the one kept: still open
        read_reflectance(scene.band("B04"), grid, window)
    close_kept_files()
    with keep_files_open("build-5"):  # closed: opened afresh
        read_reflectance(scene.band("B04"), grid, window)
    assert len(opened) == 12 and opened[-1] == "B04"
    close_kept_files()


# ----------------------------------------------------------------------------- a folder scan made cheaper, same answers


def test_a_crs_refused_again_names_each_file_though_parses_are_cached():
    from geo.crs import require_crs

    for name in ("a.tif", "b.tif", "a.tif"):  # the same text PROJ refuses, file after file
        with pytest.raises(CRSError, match=rf"^sentinel2: {name} has a CRS that PROJ cannot use: .*not-a-crs"):
            require_crs("not-a-crs", what=f"sentinel2: {name}")
    first = require_crs(UTM, what="sentinel2: a.tif")
    assert require_crs(UTM, what="sentinel2: b.tif") == first and first.to_epsg() == 32736


def test_every_band_file_keeps_one_interned_wkt_of_its_crs(tmp_path):
    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)
    texts = {id(band.crs_wkt) for band in scene.bands.values()}
    assert len(texts) == 1  # one string object: pickled once per task
    from pyproj import CRS

    with rasterio.open(scene.band("B04").path) as dataset:  # pyproj's WKT of the CRS GDAL reads
        assert scene.band("B04").crs_wkt == CRS.from_user_input(dataset.crs.to_wkt()).to_wkt()


def test_a_link_out_of_the_folder_is_refused_and_a_link_within_it_is_read(tmp_path):
    folder = tmp_path / "scenes"
    write_scene(tmp_path / "private")
    write_scene(folder, skip=("B04",))
    link = folder / "T36KVD_20210615T073621_B04_10m.tif"
    link.symlink_to(next((tmp_path / "private").glob("*_B04_10m.tif")))
    target = (tmp_path / "private").resolve() / link.name
    with pytest.raises(InputError, match=f"^sentinel2: {link}: leads outside {folder} \\(to {target}\\); refused$"):
        find_scenes(folder)
    link.unlink()
    link.symlink_to(next(folder.glob("*_B03_10m.tif")).name)  # within the folder: read as a band like any other
    (scene,) = find_scenes(folder)
    assert scene.band("B04").path == str(link)


def test_the_nearest_dated_folder_below_the_given_one_dates_a_file(tmp_path):
    root = tmp_path / "2020-01-01"  # the given folder's own name dates nothing
    for day in ("2021-03-04/x/y", "2021-03-04/20210305"):
        for name in ("blue", "green", "red", "nir"):
            write_band(root / day / f"{name}.tif", dn_10m(1500))
        write_band(root / day / "swir16.tif", np.full((2, 2), 2500, np.uint16), pixel_m=20.0)
        write_band(root / day / "scl.tif", np.full((2, 2), 4, np.uint8), pixel_m=20.0)
    scenes = find_scenes(root)
    assert [(s.scene_id, s.date) for s in scenes] == [
        ("2021-03-04/x/y", dt.date(2021, 3, 4)),
        ("2021-03-04/20210305", dt.date(2021, 3, 5)),
    ]
    write_band(root / "B04.tif", dn_10m(1))
    with pytest.raises(InputError, match=f"^sentinel2: {root / 'B04.tif'}: no acquisition date"):
        find_scenes(root)


def test_a_relative_folder_gives_absolute_band_paths(tmp_path, monkeypatch):
    write_scene(tmp_path / "scenes")
    name = "T36KVD_20210615T073621_B04_10m.tif"
    monkeypatch.chdir(tmp_path)
    for given in ("scenes", "./scenes", Path("scenes")):
        (scene,) = find_scenes(given)
        assert scene.band("B04").path == str((Path("scenes") / name).absolute())
    monkeypatch.chdir(tmp_path / "scenes")
    (scene,) = find_scenes(".")
    assert scene.band("B04").path == str(Path(name).absolute()) == str(tmp_path.resolve() / "scenes" / name)


def test_a_band_files_aux_xml_still_counts_and_no_gdal_environment_is_left_behind(tmp_path):
    write_scene(tmp_path)
    path = next(tmp_path.glob("*_B04_10m.tif"))
    Path(f"{path}.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><Offset>-0.1</Offset><Scale>0.0002</Scale></PAMRasterBand></PAMDataset>'
    )
    assert not rasterio.env.hasenv()
    (scene,) = find_scenes(tmp_path)
    assert (scene.band("B04").scale, scene.band("B04").offset) == pytest.approx((2e-4, -0.1))
    assert not rasterio.env.hasenv()
    with rasterio.Env(GDAL_CACHEMAX=64):  # the caller's environment: used as it is, and still there after
        assert find_scenes(tmp_path) == [scene]
        assert rasterio.env.getenv()["GDAL_CACHEMAX"] == 64


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_world_file_named_in_another_case_still_georeferences_a_band(tmp_path):
    write_scene(tmp_path)
    path = next(tmp_path.glob("*_B04_10m.tif"))
    write_band(path, dn_10m(1000), transform=None)  # a CRS, but the grid is in the world file
    path.with_name(path.stem.lower() + ".tfw").write_text("10\n0\n0\n-10\n500005\n7899995\n")
    (scene,) = find_scenes(tmp_path)  # GDAL finds it by listing the folder (GDAL_DISABLE_READDIR_ON_OPEN unset)
    assert scene.band("B04").transform == scene.band("B02").transform


def test_block_corner_is_the_corner_of_the_tile_block_holding_a_point():
    """A file at x 500 000, y 7 900 000 in 10 m pixels and 1024-pixel blocks (10 240 m): a point 15 000 m east and
    12 000 m south lies in the second block each way; strips and unknown blocks give the point back."""
    band = BandFile(
        "b.jp2", "B04", "", from_origin(*ORIGIN, 10.0, 10.0), 10980, 10980, True, 0, block_shape=(1024, 1024)
    )
    point = (ORIGIN[0] + 15_000.0, ORIGIN[1] - 12_000.0)
    assert block_corner(band, *point) == (ORIGIN[0] + 10_240.0, ORIGIN[1] - 10_240.0)
    assert block_corner(band, *ORIGIN) == ORIGIN  # a corner is its own block's
    assert block_corner(band, ORIGIN[0] + 10_240.0, ORIGIN[1] - 10_239.0) == (ORIGIN[0] + 10_240.0, ORIGIN[1])
    for shape in ((1, 10980), (256, 10980), (0, 0)):
        assert block_corner(dataclasses.replace(band, block_shape=shape), *point) == point, shape


def test_a_crop_starts_on_a_block_corner_of_the_first_scene_even_beyond_the_files(tmp_path):
    """Two Sentinel-2-like tiles 30 km wide in 1024-pixel blocks, the second 7 km west and 7 km north of the
    first: a bbox from 5 km west of the first's corner starts the grid on the first's block corner 10.24 km
    west of it, beyond the second file (those pixels are never read), not on the files' west edge."""
    write_scene(tmp_path)
    (scene,) = find_scenes(tmp_path)

    def placed(dx_m: float, dy_m: float) -> Scene:
        def band(b: BandFile) -> BandFile:
            t, size = b.transform, round(30_000 / b.pixel_m)
            moved = Affine(t.a, t.b, t.c + dx_m, t.d, t.e, t.f + dy_m)
            return dataclasses.replace(b, transform=moved, width=size, height=size, block_shape=(1024, 1024))

        return dataclasses.replace(scene, bands={name: band(b) for name, b in scene.bands.items()})

    first, second = placed(0, 0), placed(-7_000, 7_000)
    x0, y0 = ORIGIN
    box = rasterio.warp.transform_bounds(UTM, "EPSG:4326", x0 - 5_000, y0 - 12_000, x0 + 10_000, y0 - 2_000)
    grid = output_grid([first, second], box)
    exact = output_grid([first, second], box, exact_bbox=True)
    assert (grid.transform.c, grid.transform.f) == (x0 - 10_240, y0)
    assert x0 - 5_100 < exact.transform.c <= x0 - 5_000 and y0 - 2_000 <= exact.transform.f < y0 - 1_900
    assert (grid.transform.c + 10 * grid.width, grid.transform.f - 10 * grid.height) == (
        exact.transform.c + 10 * exact.width,
        exact.transform.f - 10 * exact.height,
    )  # the east and south edges stay at the bbox
