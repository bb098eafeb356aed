"""Reported production and national totals from CSV or Excel into canonical tables.

Rows are numbered as a spreadsheet shows them (the header is row 1), so an error such
as "row 14, column carats" points at the cell to fix.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo.errors import InputError
from geo.periods import parse_period
from layers.archives import checked_members
from layers.fields import resolve_columns
from layers.limits import DEFAULT_LIMITS, InputLimits
from layers.paths import local_path
from layers.schema import (
    NATIONAL_OPTIONAL,
    NATIONAL_REQUIRED,
    PRODUCTION_OPTIONAL,
    PRODUCTION_REQUIRED,
    normalise_identifier,
)

TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".xls"}
_GROUPED = re.compile(r"^\d{1,3}([,' _\u00a0\u202f]\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class LoadedTable:
    """A canonical table (production or national totals) and notes about it."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def read_production(
    raw_path: str | Path, mappings: dict | None = None, limits: InputLimits = DEFAULT_LIMITS
) -> LoadedTable:
    """Read reported production: ``concession_id, period, carats`` [, ``value_usd, source``].

    Returns one row per (concession_id, period) with ``period`` as text (``2021``,
    ``2021-Q3``, ``2021-03``). A repeated (concession_id, period) is an error, since
    summing it silently could double-count a report.
    """
    return _read_reports(
        raw_path, mappings, limits, "production", "concession_id", PRODUCTION_REQUIRED, PRODUCTION_OPTIONAL
    )


def read_national(
    raw_path: str | Path, mappings: dict | None = None, limits: InputLimits = DEFAULT_LIMITS
) -> LoadedTable:
    """Read national totals: ``country, period, carats`` [, ``value_usd, source``]."""
    return _read_reports(raw_path, mappings, limits, "national", "country", NATIONAL_REQUIRED, NATIONAL_OPTIONAL)


def _read_reports(raw_path, mappings, limits, layer: str, key: str, required, optional) -> LoadedTable:
    """A table of carats reported per ``key`` (concession or country) and period."""
    path, frame, columns = _read_table(raw_path, layer, required, optional, mappings, limits)
    table = pd.DataFrame(
        {
            key: [
                _required_id(path, layer, row, v, key) for row, v in zip(_rows(frame), frame[columns[key]], strict=True)
            ],
            "period": _periods(path, layer, frame[columns["period"]]),
            "carats": _numbers(path, layer, "carats", frame[columns["carats"]], required=True),
            "value_usd": _numbers(path, layer, "value_usd", frame[columns["value_usd"]], required=False)
            if "value_usd" in columns
            else float("nan"),
            "source": frame[columns["source"]].fillna("").astype(str).str.strip() if "source" in columns else "",
        },
        index=frame.index,
    )
    _refuse_duplicates(path, layer, table, [key, "period"])
    return LoadedTable(table.reset_index(drop=True), [], _says_synthetic(table))


def parse_carats(text: object) -> float:
    """A non-negative number from a cell: ``1234``, ``1,234.5``, ``1 234``, ``12.0``.

    Thousands may be grouped with commas, spaces, apostrophes or underscores; a comma
    as the decimal mark is refused (``1,5`` is ambiguous). Raises ``ValueError``.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        number = float(text)
        if number != number:
            raise ValueError("is empty")
    else:
        raw = "" if text is None else str(text).strip()
        if not raw:
            raise ValueError("is empty")
        if raw.startswith("-"):
            raise ValueError(f"{raw!r} is negative; carats and values must be 0 or more")
        if _GROUPED.match(raw):
            raw = re.sub(r"[,' _\u00a0\u202f]", "", raw)
        if not _PLAIN.match(raw):
            raise ValueError(f"{raw!r} is not a number")
        number = float(raw)
    if number < 0:
        raise ValueError(f"{text!r} is negative; carats and values must be 0 or more")
    if number == float("inf"):
        raise ValueError(f"{text!r} is not a finite number")
    return number


def _read_table(raw_path, layer, required, optional, mappings, limits: InputLimits):
    path = local_path(raw_path, layer=layer)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{layer}: {path}: unsupported file type {suffix or '(none)'}; use CSV or Excel (.xlsx)")
    size_mb = path.stat().st_size / 1024**2
    if size_mb > limits.max_table_file_mb:
        raise InputError(f"{layer}: {path}: " + limits.exceeded("max_table_file_mb", f"is {size_mb:,.0f} MB"))
    if suffix in (".csv", ".txt"):
        _refuse_long_lines(path, layer, limits)
    elif suffix in (".xlsx", ".xlsm"):
        checked_members(path, layer, limits)  # a workbook is a zip: no bombs
    try:
        if suffix in (".csv", ".txt"):
            with warnings.catch_warnings():
                # A row longer than the header would lose cells: an error, not a warning.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    dtype=str,
                    keep_default_na=False,
                    encoding="utf-8-sig",
                    skip_blank_lines=False,
                    index_col=False,
                )
        else:
            frame = pd.read_excel(path, dtype=object)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{layer}: {path}: is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    except Exception as exc:
        raise InputError(f"{layer}: {path}: cannot be read as a table: {' '.join(str(exc).split())}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    # Blank rows are skipped; the index keeps every row's place, so messages name the right row.
    blank = frame.apply(lambda row: all(str(v).strip() in ("", "nan", "None") for v in row), axis=1)
    frame = frame[~blank] if len(frame) else frame
    columns = resolve_columns(
        list(frame.columns),
        required=required,
        optional=optional,
        mappings=mappings or {},
        layer=layer,
        source=str(path),
    )
    return path, frame, columns


def _refuse_long_lines(path: Path, layer: str, limits: InputLimits) -> None:
    """Refuse a text file with a line longer than ``limits.max_table_line_kb``, read in 1 MiB blocks."""
    longest_allowed = int(limits.max_table_line_kb * 1024)
    line, length = 1, 0  # the current line's number and its length so far
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            parts = block.split(b"\n")
            for k, part in enumerate(parts):
                length += len(part)
                if length > longest_allowed:
                    raise InputError(
                        f"{layer}: {path}: line {line} "
                        + limits.exceeded("max_table_line_kb", f"is over {limits.max_table_line_kb:,g} kB long")
                    )
                if k < len(parts) - 1:
                    line, length = line + 1, 0


def _rows(frame: pd.DataFrame) -> list[int]:
    """Spreadsheet row numbers of ``frame``'s rows (the header is row 1)."""
    return [int(i) + 2 for i in frame.index]


def _required_id(path, layer, row, value, column) -> str:
    text = normalise_identifier(value)
    if text is None:
        raise InputError(f"{layer}: {path}: row {row}, column {column}: is empty")
    return text


def _periods(path, layer, values: pd.Series) -> list[str]:
    labels = []
    for row, value in zip(_rows(values.to_frame()), values, strict=True):
        try:
            labels.append(parse_period(value).label)
        except ValueError as exc:
            raise InputError(f"{layer}: {path}: row {row}, column period: {exc}") from None
    return labels


def _numbers(path, layer, column, values: pd.Series, *, required: bool) -> list[float]:
    numbers = []
    for row, value in zip(_rows(values.to_frame()), values, strict=True):
        blank = (
            value is None
            or (isinstance(value, str) and not value.strip())
            or (isinstance(value, float) and value != value)
        )
        if blank and not required:
            numbers.append(float("nan"))
            continue
        try:
            numbers.append(parse_carats(value))
        except ValueError as exc:
            hint = "; write 0 if nothing was produced" if blank else ""
            raise InputError(f"{layer}: {path}: row {row}, column {column}: {exc}{hint}") from None
    return numbers


def _refuse_duplicates(path, layer, table: pd.DataFrame, keys: list[str]) -> None:
    repeats = table.index[table.duplicated(keys, keep="first")]
    if len(repeats):
        second = repeats[0]
        same = (table[keys] == table.loc[second, keys]).all(axis=1)
        first = table.index[same][0]
        rows = [int(first) + 2, int(second) + 2]
        values = ", ".join(f"{k}={table.loc[second, k]}" for k in keys)
        raise InputError(
            f"{layer}: {path}: rows {rows[0]} and {rows[1]} both report {values}; "
            "combine them into one row (minewatch never sums repeated reports silently)"
        )


def _says_synthetic(table: pd.DataFrame) -> bool:
    return bool(table["source"].astype(str).str.contains("synthetic", case=False).any())
