"""Fuzzing the table and GeoJSON loaders: any input ends in a result or an InputError, never another exception."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.errors import InputError
from layers.concessions import read_concessions
from layers.tables import read_national, read_production

HEADERS = ["concession_id,period,carats", "country,period,carats,value_usd", "CONCESSION_ID;period;carats", ""]
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["2021", "2021-Q3", "2021-13", "1,234.5", "-5", "1e400", "nan", "inf", "", " ", "=1+1", "\x00"]),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(HEADERS), rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=6),
       raw=st.binary(max_size=64), use_raw=st.booleans())  # fmt: skip
def test_csv_loaders_never_crash(tmp_path, header, rows, raw, use_raw):
    path = tmp_path / "table.csv"
    if use_raw:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join([header, *[",".join(r) for r in rows]]), encoding="utf-8")
    for reader in (read_production, read_national):
        with contextlib.suppress(InputError):
            reader(path)


GEOMETRIES = st.one_of(
    st.none(),
    st.fixed_dictionaries({"type": st.sampled_from(["Polygon", "Point", "MultiPolygon", "LineString", "Nonsense"]),
                           "coordinates": st.recursive(st.floats(-1e3, 1e3) | st.integers(-5, 5),
                                                       lambda inner: st.lists(inner, max_size=5), max_leaves=30)}),
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    features=st.lists(
        st.fixed_dictionaries(
            {"type": st.just("Feature"),
             "properties": st.fixed_dictionaries({"concession_id": st.one_of(st.none(), st.text(max_size=5), st.integers()),
                                                  "holder": st.one_of(st.none(), st.text(max_size=5)),
                                                  "status": st.sampled_from(["active", "ACTIVE", "weird", None, ""])}),
             "geometry": GEOMETRIES}
        ),
        max_size=4,
    ),
    garbage=st.text(max_size=30),
    use_garbage=st.booleans(),
)  # fmt: skip
def test_geojson_concessions_loader_never_crashes(tmp_path, features, garbage, use_garbage):
    path = tmp_path / "c.geojson"
    text = garbage if use_garbage else json.dumps({"type": "FeatureCollection", "features": features})
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(InputError):
        read_concessions(path)


def test_atheris_fuzzing_of_the_loaders_finds_no_crash(tmp_path):
    """A short coverage-guided run (fuzz/fuzz_loaders.py): libFuzzer exits non-zero on a crash."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "fuzz" / "fuzz_loaders.py"), "-runs=600", "-max_len=2048", "-seed=1",
         f"-artifact_prefix={tmp_path}/",
         "-max_total_time=120", str(tmp_path / "corpus")],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 600 runs" in result.stderr
