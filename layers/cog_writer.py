"""Write a Cloud-Optimized GeoTIFF from tiles that arrive in any order, each compressed where it was computed.

Why not GDAL's COG driver: it needs the whole raster written first (build-activity
wrote a temporary GeoTIFF, then ``rio_cogeo.cog_translate`` read it back, built the
overviews and compressed every block again). On a Dask cluster that was all serial
work for the client once the workers were done: about a third of a 2-worker build of a
10 km scene, and for a country hours on one machine. Here the work is tasks like any
other: a tile's task compresses it (:func:`encode_tile`); when the 2 x 2 tiles under an
overview tile are done (:class:`Pyramid` keeps count), a task decompresses them, halves
each and compresses the piece (:func:`overview_tile`). The client (:class:`CogWriter`)
only appends compressed bytes to spool files and, at the end, writes the TIFF
directories and copies the bytes into place.

A tile travels as its compressed bytes only (:class:`EncodedTile`), to the client and
to the task making the overview above it. Tiles used to carry a half-resolution float32
copy as well, for that overview: a quarter of the raw scores' bytes, about ten times
their compressed size, all through the client's network link on a cluster, for a copy
the client never used. Instead an overview task decompresses its four tiles again.

The file is what GDAL's COG driver writes, minus its optional block leaders and
trailers:

- little-endian TIFF (BigTIFF when over 4 GB), float32, one band, square tiles of
  ``tile_px`` (a multiple of 16), DEFLATE with the floating-point predictor (3), every
  tile present (the edge tiles padded with nodata);
- overviews halving the size until the smallest fits in one tile (GDAL's COG rule),
  each pixel the mean of the valid pixels of the 2 x 2 below it (nodata if none);
- all directories first (the main image's, then the overviews' in decreasing size),
  then the tiles, the smallest overview's first and the full resolution's last, each
  level's in row-major order; GDAL's "ghost" header says so
  (``LAYOUT=IFDS_BEFORE_DATA``, ``BLOCK_ORDER=ROW_MAJOR``);
- the georeferencing tags (model pixel scale, tie point, GeoKeys) and the dataset tags
  (``GDAL_METADATA``) are those GDAL writes: they are copied from a one-pixel GeoTIFF
  that rasterio makes in memory, so that any CRS GDAL can describe is described the
  same way; the nodata value is in ``GDAL_NODATA``.

Tested against GDAL: the file validates (:func:`cog_errors`: ``rio_cogeo.cogeo.cog_validate``
under GDAL's rule for tiling), and rasterio reads back every pixel, the overviews, CRS,
transform, nodata and tags.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tempfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from rasterio.io import MemoryFile

from layers.activity import Grid

ZLIB_LEVEL = 6  # GDAL's default DEFLATE level
GHOST_HEADER = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nKNOWN_INCOMPATIBLE_EDITION=NO\n"
CLASSIC_LIMIT_BYTES = 2**32 - 2**20  # write BigTIFF above this (with room for the directories)
# The widest block GDAL's COG validator (validate_cloud_optimized_geotiff.py) accepts in an image or overview that is
# exactly one block wide: it calls a block as wide as its image untiled only when the block is wider than this.
MAX_TILE_PX = 1024
UNTILED = re.compile(r"The file is greater than 512xH or 512xW, but is not tiled|Overview of index (\d+) is not tiled")

# TIFF tags and field types used (TIFF 6.0, BigTIFF, GeoTIFF 1.1, GDAL's private tags)
NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE, COMPRESSION = 254, 256, 257, 258, 259
PHOTOMETRIC, SAMPLES_PER_PIXEL, PLANAR_CONFIG, PREDICTOR = 262, 277, 284, 317
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_BYTE_COUNTS, SAMPLE_FORMAT = 322, 323, 324, 325, 339
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737)  # pixel scale, tie point, transformation, GeoKeys...
GDAL_METADATA, GDAL_NODATA = 42112, 42113
ASCII, SHORT, LONG, LONG8 = 2, 3, 4, 16
TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}
DEFLATE, FLOATING_POINT_PREDICTOR, IEEE_FLOAT, MIN_IS_BLACK, REDUCED_RESOLUTION = 8, 3, 3, 1, 1


@dataclass(frozen=True)
class EncodedTile:
    """One tile as it goes into the file: ``data``, its DEFLATE bytes (a ``tile_px`` square block, padded), and
    ``shape``, the rows and columns of pixels it holds (less than ``tile_px`` at the right and bottom edges)."""

    data: bytes
    shape: tuple[int, int]


def encode_tile(values: np.ndarray, tile_px: int, nodata: float) -> EncodedTile:
    """Compress a float32 tile (at most ``tile_px`` square; padded with ``nodata``) as a COG block.

    Runs where the tile was computed, so that compressing a raster spreads over the workers.
    """
    return EncodedTile(_deflate(values, tile_px, nodata), tuple(values.shape))


def decode_tile(tile: EncodedTile, tile_px: int) -> np.ndarray:
    """The float32 pixels of a tile :func:`encode_tile` made, ``tile.shape`` of them (the padding cut off)."""
    planes = np.frombuffer(zlib.decompress(tile.data), dtype=np.uint8).reshape(tile_px, 4 * tile_px)
    rows, cols = tile.shape
    return _undo_floating_point_predictor(planes, tile_px)[:rows, :cols]


def reduce_half(values: np.ndarray, nodata: float) -> np.ndarray:
    """Each 2 x 2 block's mean of the pixels that are not ``nodata`` (``nodata`` if none), float32.

    An odd last row or column is averaged alone, as GDAL sizes overviews:
    ``ceil(rows / 2) x ceil(columns / 2)``. The sum is taken in float64.
    """
    return _reduce_half(np.ascontiguousarray(values, dtype=np.float32), np.float32(nodata))


@numba.njit(cache=True, nogil=True)
def _reduce_half(values: np.ndarray, nodata: np.float32) -> np.ndarray:
    rows, cols = values.shape
    out = np.empty(((rows + 1) // 2, (cols + 1) // 2), dtype=np.float32)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            total, count = 0.0, 0
            for r in range(2 * i, min(2 * i + 2, rows)):
                for c in range(2 * j, min(2 * j + 2, cols)):
                    if values[r, c] != nodata:
                        total += values[r, c]
                        count += 1
            out[i, j] = total / count if count else nodata
    return out


def _deflate(values: np.ndarray, tile_px: int, nodata: float) -> bytes:
    """The block's bytes with TIFF's floating-point predictor (Technical Note 3), compressed with zlib."""
    planes = _floating_point_predictor(np.ascontiguousarray(values, dtype=np.float32), tile_px, np.float32(nodata))
    return zlib.compress(planes, ZLIB_LEVEL)


@numba.njit(cache=True, nogil=True)
def _floating_point_predictor(values: np.ndarray, tile_px: int, nodata: np.float32) -> np.ndarray:
    """A ``tile_px`` square block (``values`` padded with ``nodata``), each row's float32 bytes split into four
    planes, most significant first (as big-endian), then each byte stored as its difference from the one before."""
    rows, cols = values.shape
    bits = values.view(np.uint32)
    pad = np.array([nodata], dtype=np.float32).view(np.uint32)[0]
    out = np.empty((tile_px, 4 * tile_px), dtype=np.uint8)
    for r in range(tile_px):
        for c in range(tile_px):
            word = bits[r, c] if r < rows and c < cols else pad
            for plane in range(4):
                out[r, plane * tile_px + c] = (word >> (8 * (3 - plane))) & 0xFF
        previous = np.uint8(0)
        for k in range(4 * tile_px):
            current = out[r, k]
            out[r, k] = np.uint8(current - previous)
            previous = current
    return out


@numba.njit(cache=True, nogil=True)
def _undo_floating_point_predictor(planes: np.ndarray, tile_px: int) -> np.ndarray:
    """The inverse of :func:`_floating_point_predictor`: sum each row's byte differences, join the four planes."""
    out = np.empty((tile_px, tile_px), dtype=np.uint32)
    row = np.empty(4 * tile_px, dtype=np.uint8)
    for r in range(tile_px):
        total = np.uint8(0)
        for k in range(4 * tile_px):
            total = np.uint8(total + planes[r, k])
            row[k] = total
        for c in range(tile_px):
            out[r, c] = (
                (np.uint32(row[c]) << 24)
                | (np.uint32(row[tile_px + c]) << 16)
                | (np.uint32(row[2 * tile_px + c]) << 8)
                | np.uint32(row[3 * tile_px + c])
            )
    return out.view(np.float32)


@dataclass(frozen=True)
class OverviewJob:
    """An overview tile whose tiles below have all arrived: make it with :func:`overview_tile`.

    ``children`` holds, row by row, what :meth:`Pyramid.arrived` was given for the 2 x 2
    tiles of the level below (None beyond the grid's edge).
    """

    level: int
    row: int
    col: int
    shape: tuple[int, int]
    children: tuple[tuple[object, object], tuple[object, object]]


class Pyramid:
    """The levels of a COG of ``width`` x ``height`` pixels cut into ``tile_px`` tiles, and which overview tiles
    can be made as tiles arrive.

    Level 0 is the full resolution; each overview halves the size (``ceil``) until one
    tile holds it, as GDAL's COG driver does. Overview tile ``(row, col)`` of level ``k``
    is made of tiles ``(2 row + i, 2 col + j)`` of level ``k - 1``, each halved.
    :meth:`arrived` keeps what it is given only until the tile
    above is complete: at most about two rows of tiles per level when tiles come in row
    order.
    """

    def __init__(self, width: int, height: int, tile_px: int):
        if tile_px % 16 or tile_px <= 0:
            raise ValueError(f"tile_px must be a positive multiple of 16 (TIFF tiles), not {tile_px}")
        self.tile_px = tile_px
        self.sizes = [(width, height)]
        while max(width, height) > tile_px:
            width, height = math.ceil(width / 2), math.ceil(height / 2)
            self.sizes.append((width, height))
        self._waiting: dict[tuple[int, int, int], dict[tuple[int, int], object]] = {}

    @property
    def levels(self) -> int:
        """How many levels: the full resolution and its overviews."""
        return len(self.sizes)

    def grid_of(self, level: int) -> tuple[int, int]:
        """``(rows, columns)`` of tiles at ``level``."""
        width, height = self.sizes[level]
        return math.ceil(height / self.tile_px), math.ceil(width / self.tile_px)

    def tiles(self) -> int:
        """How many tiles all levels hold."""
        return sum(rows * cols for rows, cols in map(self.grid_of, range(self.levels)))

    def shape(self, level: int, row: int, col: int) -> tuple[int, int]:
        """``(rows, columns)`` of pixels of a tile: ``tile_px`` square but at the right and bottom edges."""
        width, height = self.sizes[level]
        return min(self.tile_px, height - row * self.tile_px), min(self.tile_px, width - col * self.tile_px)

    def arrived(self, level: int, row: int, col: int, tile) -> OverviewJob | None:
        """Note that tile ``(row, col)`` of ``level`` is made (``tile``: anything :func:`overview_tile` will be
        given for it); returns the overview tile above it if that one now has all its parts."""
        if level + 1 == self.levels:
            return None
        key = (level + 1, row // 2, col // 2)
        parts = self._waiting.setdefault(key, {})
        parts[(row % 2, col % 2)] = tile
        rows, cols = self.grid_of(level)
        due = [(i, j) for i in (0, 1) for j in (0, 1) if 2 * key[1] + i < rows and 2 * key[2] + j < cols]
        if len(parts) < len(due):
            return None
        del self._waiting[key]
        children = tuple(tuple(parts.get((i, j)) for j in (0, 1)) for i in (0, 1))
        return OverviewJob(*key, self.shape(*key), children)


def overview_tile(children, shape: tuple[int, int], tile_px: int, nodata: float) -> EncodedTile:
    """The overview tile of ``shape`` made of its 2 x 2 ``children`` (:class:`EncodedTile` s, None beyond the
    edge), each decompressed and halved (:func:`reduce_half`), encoded as :func:`encode_tile` does."""
    half = tile_px // 2
    pixels = np.full(shape, nodata, dtype=np.float32)
    for i, row in enumerate(children):
        for j, child in enumerate(row):
            if child is not None:
                piece = reduce_half(decode_tile(child, tile_px), nodata)
                pixels[i * half : i * half + piece.shape[0], j * half : j * half + piece.shape[1]] = piece
    return encode_tile(pixels, tile_px, nodata)


@dataclass
class _Spool:
    """Where one level's compressed tiles wait: an unnamed temporary file, and each tile's offset and size."""

    file: object
    placed: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (row, col) -> (offset, size)


class CogWriter:
    """Assemble ``path``, a single-band float32 COG of ``grid``, from compressed tiles given in any order.

    Give every tile of every level of :attr:`pyramid` to :meth:`add`: the full
    resolution's as :func:`encode_tile` made them, the overviews' as
    :func:`overview_tile` made them (:class:`Pyramid` says when each can be made), then
    call :meth:`finish`. The compressed tiles wait in unnamed temporary files beside
    ``path`` (nothing is held in memory); use as a context manager, so that they are
    removed however it ends.
    """

    def __init__(self, path: Path, grid: Grid, tile_px: int, nodata: float, tags: dict[str, str]):
        if not 16 <= tile_px <= MAX_TILE_PX or tile_px % 16:
            raise ValueError(f"{path}: tiles of {tile_px} pixels: use a multiple of 16 up to {MAX_TILE_PX}")
        self.path = Path(path)
        self.grid, self.tile_px, self.nodata, self.tags = grid, tile_px, nodata, dict(tags)
        self.pyramid = Pyramid(grid.width, grid.height, tile_px)
        self._geo_tags: dict[int, tuple[int, bytes]] | None = None  # made by prepare(), else by finish()
        self._files = ExitStack()  # O_TMPFILE on Linux: nothing to sweep after a crash
        self.spools = [
            _Spool(self._files.enter_context(tempfile.TemporaryFile(dir=self.path.parent)))  # noqa: SIM115
            for _ in range(self.pyramid.levels)
        ]

    def __enter__(self) -> CogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._files.close()

    def prepare(self) -> None:
        """Make the header's CRS, transform and dataset tags now (:func:`gdal_tags`, a one-pixel GeoTIFF).

        They do not depend on the tiles, so a caller can have them made in another thread
        while the tiles are computed; :meth:`finish` makes them itself otherwise.
        """
        self._geo_tags = gdal_tags(self.grid, self.tags)

    def add(self, level: int, row: int, col: int, data: bytes) -> None:
        """Take the compressed tile ``(row, col)`` of ``level`` (0: the full resolution)."""
        spool = self.spools[level]
        if (row, col) in spool.placed:
            raise ValueError(f"{self.path.name}: tile ({row}, {col}) of level {level} was given twice")
        spool.placed[(row, col)] = (spool.file.tell(), len(data))
        spool.file.write(data)

    def _byte_counts(self, level: int) -> list[int]:
        rows, cols = self.pyramid.grid_of(level)
        return [self.spools[level].placed[(r, c)][1] for r in range(rows) for c in range(cols)]

    def finish(self) -> Path:
        """Write the file: header, every directory, then the tiles (smallest overview first); returns ``path``."""
        pyramid = self.pyramid
        for level, spool in enumerate(self.spools):
            rows, cols = pyramid.grid_of(level)
            missing = [(r, c) for r in range(rows) for c in range(cols) if (r, c) not in spool.placed]
            if missing:
                raise ValueError(
                    f"{self.path.name}: {len(missing)} tiles of level {level} were never given, the first {missing[0]}"
                )
        data_bytes = sum(size for spool in self.spools for _, size in spool.placed.values())
        layout = _Layout(big=data_bytes > CLASSIC_LIMIT_BYTES)
        directories = [self._directory(level, layout) for level in range(pyramid.levels)]
        header = layout.header(GHOST_HEADER)
        # Lay out the directories, then the data: all sizes are known, so every offset is too.
        positions, position = [], len(header)
        for entries in directories:
            positions.append(position)
            position += layout.directory_size(entries)
        data_offsets = {}
        for level in reversed(range(pyramid.levels)):  # the smallest overview first, the full resolution last
            data_offsets[level] = []
            for size in self._byte_counts(level):
                data_offsets[level].append(position)
                position += size
        with open(self.path, "wb") as out:
            out.write(header)
            for level, entries in enumerate(directories):
                entries[TILE_OFFSETS] = (layout.offset_type, data_offsets[level])
                following = positions[level + 1] if level + 1 < len(directories) else 0
                out.write(layout.directory(entries, positions[level], following))
            for level in reversed(range(pyramid.levels)):
                self._copy_tiles(level, out)
        return self.path

    def _directory(self, level: int, layout: _Layout) -> dict[int, tuple[int, object]]:
        """The tags of ``level`` (0: the full resolution), tag -> (field type, values)."""
        width, height = self.pyramid.sizes[level]
        counts = self._byte_counts(level)
        entries: dict[int, tuple[int, object]] = {
            IMAGE_WIDTH: (LONG, [width]),
            IMAGE_LENGTH: (LONG, [height]),
            BITS_PER_SAMPLE: (SHORT, [32]),
            COMPRESSION: (SHORT, [DEFLATE]),
            PHOTOMETRIC: (SHORT, [MIN_IS_BLACK]),
            SAMPLES_PER_PIXEL: (SHORT, [1]),
            PLANAR_CONFIG: (SHORT, [1]),
            PREDICTOR: (SHORT, [FLOATING_POINT_PREDICTOR]),
            TILE_WIDTH: (SHORT, [self.tile_px]),
            TILE_LENGTH: (SHORT, [self.tile_px]),
            TILE_OFFSETS: (layout.offset_type, [0] * len(counts)),  # placed by finish()
            TILE_BYTE_COUNTS: (LONG, counts),
            SAMPLE_FORMAT: (SHORT, [IEEE_FLOAT]),
            GDAL_NODATA: (ASCII, _ascii(f"{self.nodata:.17g}")),
        }
        if level:
            entries[NEW_SUBFILE_TYPE] = (LONG, [REDUCED_RESOLUTION])
        else:
            if self._geo_tags is None:
                self.prepare()
            entries.update(self._geo_tags)
        return entries

    def _copy_tiles(self, level: int, out) -> None:
        """The level's tiles from its spool into ``out``, in row-major order."""
        spool = self.spools[level]
        spool.file.flush()
        descriptor = spool.file.fileno()
        rows, cols = self.pyramid.grid_of(level)
        for r in range(rows):
            for c in range(cols):
                offset, size = spool.placed[(r, c)]
                out.write(os.pread(descriptor, size, offset))


@dataclass(frozen=True)
class _Layout:
    """Classic TIFF or BigTIFF: the header, and how directories and their values are packed (little-endian)."""

    big: bool

    @property
    def offset_type(self) -> int:
        return LONG8 if self.big else LONG

    @property
    def entry_bytes(self) -> int:
        return 20 if self.big else 12

    @property
    def inline_bytes(self) -> int:
        return 8 if self.big else 4

    def header(self, ghost: str) -> bytes:
        """The TIFF header, then GDAL's structural metadata (which the first directory follows)."""
        first = 16 if self.big else 8
        body = ghost + " "  # GDAL pads it the same way
        text = f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n{body}".encode("ascii")
        start = first + len(text) + len(text) % 2  # directories start on a word boundary
        head = struct.pack("<2sHHHQ", b"II", 43, 8, 0, start) if self.big else struct.pack("<2sHI", b"II", 42, start)
        return (head + text).ljust(start, b"\0")

    def directory_size(self, entries: dict) -> int:
        count_bytes, next_bytes = (8, 8) if self.big else (2, 4)
        size = count_bytes + len(entries) * self.entry_bytes + next_bytes
        return size + sum(_padded(self._value_bytes(*value)) for value in entries.values() if self._outside(*value))

    def directory(self, entries: dict, position: int, following: int) -> bytes:
        """One directory at ``position`` with its values after it; ``following``: the next directory's offset."""
        count_format, next_format = ("<Q", "<Q") if self.big else ("<H", "<I")
        fixed = struct.calcsize(count_format) + len(entries) * self.entry_bytes + struct.calcsize(next_format)
        table, values = [struct.pack(count_format, len(entries))], []
        value_position = position + fixed
        for tag in sorted(entries):
            kind, items = entries[tag]
            raw = self._value_bytes(kind, items)
            count = len(raw) // TYPE_BYTES[kind]
            if self._outside(kind, items):
                field_value = struct.pack("<Q" if self.big else "<I", value_position)
                values.append(raw.ljust(_padded(raw), b"\0"))
                value_position += _padded(raw)
            else:
                field_value = raw.ljust(self.inline_bytes, b"\0")
            table.append(struct.pack("<HHQ" if self.big else "<HHI", tag, kind, count) + field_value)
        table.append(struct.pack(next_format, following))
        return b"".join(table + values)

    def _outside(self, kind: int, items) -> bool:
        return len(self._value_bytes(kind, items)) > self.inline_bytes

    @staticmethod
    def _value_bytes(kind: int, items) -> bytes:
        if isinstance(items, bytes):
            return items
        codes = {SHORT: "H", LONG: "I", LONG8: "Q"}
        return struct.pack(f"<{len(items)}{codes[kind]}", *items)


def _padded(raw: bytes) -> int:
    return len(raw) + len(raw) % 2


def _ascii(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def gdal_tags(grid: Grid, tags: dict[str, str]) -> dict[int, tuple[int, bytes]]:
    """The tags GDAL writes for ``grid`` (CRS and transform) and the dataset ``tags``, from a one-pixel GeoTIFF.

    The GeoTIFF keys of any CRS, and GDAL's own XML quoting of the tags, are then exactly
    GDAL's. Returned as tag -> (field type, raw little-endian value bytes), ready for
    :meth:`_Layout.directory`.
    """
    profile = dict(driver="GTiff", width=1, height=1, count=1, dtype="uint8", crs=grid.crs, transform=grid.transform)
    with MemoryFile() as memory:
        with memory.open(**profile, BIGTIFF="NO", ENDIANNESS="LITTLE") as template:
            template.update_tags(**tags)
        wanted = (*GEO_TAGS, GDAL_METADATA)
        return {tag: value for tag, value in _classic_tags(memory.read()).items() if tag in wanted}


def _classic_tags(tiff: bytes) -> dict[int, tuple[int, bytes]]:
    """The first directory of a little-endian classic TIFF: tag -> (field type, raw value bytes)."""
    if tiff[:4] != b"II*\0":
        raise ValueError("not a little-endian classic TIFF")
    (position,) = struct.unpack_from("<I", tiff, 4)
    (count,) = struct.unpack_from("<H", tiff, position)
    tags = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack_from("<HHI4s", tiff, position + 2 + 12 * i)
        size = TYPE_BYTES[kind] * n
        raw = value[:size] if size <= 4 else tiff[struct.unpack("<I", value)[0] :][:size]
        tags[tag] = (kind, raw)
    return tags


def cog_errors(path: Path) -> list[str]:
    """What is wrong with ``path`` as a Cloud-Optimized GeoTIFF (nothing: empty): rio-cogeo's ``cog_validate``,
    with GDAL's rule for tiling.

    rio-cogeo calls an image or overview wider than 512 pixels untiled whenever its
    block is as wide as it is; GDAL's own validator (``validate_cloud_optimized_geotiff.py``)
    does so only when that block is also wider than :data:`MAX_TILE_PX`. A level exactly
    one tile wide is such a case: a 2048-pixel grid's first overview in 1024-pixel tiles,
    as GDAL's COG driver writes it too (rio-cogeo rejects that file as well). So that
    message is dropped where the block is square and no wider than :data:`MAX_TILE_PX`:
    one tile across. Strips as wide as the image stay untiled, as rio-cogeo says (GDAL's
    rule would let those up to 1024 pixels wide pass); everything else rio-cogeo checks
    stands.
    """
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    def stands(error: str) -> bool:
        untiled = UNTILED.fullmatch(error)
        if untiled is None:
            return True
        level = untiled.group(1)
        with rasterio.open(path, **({} if level is None else {"OVERVIEW_LEVEL": int(level)})) as dataset:
            block_height, block_width = dataset.block_shapes[0]
            return not block_height == block_width <= MAX_TILE_PX

    _valid, errors, _warnings = cog_validate(str(path), quiet=True)
    return [error for error in errors if stands(error)]
