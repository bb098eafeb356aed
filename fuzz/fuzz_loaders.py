"""Coverage-guided fuzzing (atheris, libFuzzer) of the loaders that read strangers' files.

Each input is written to a file and read as a production table (CSV), a national table
(CSV) and a concessions layer (GeoJSON). A loader may return a table or raise
:class:`geo.errors.InputError` (the one-line refusal users see); any other exception is
a crash, and libFuzzer stops with the input that caused it.

Run (a few minutes finds most of what it will find; ``-runs`` bounds it)::

    python fuzz/fuzz_loaders.py -runs=20000 -max_len=4096 fuzz/corpus

The seed corpus (``fuzz/corpus``, made by :func:`write_seeds` on first run) holds a valid
CSV and GeoJSON, so mutations start from the formats rather than from noise.
``tests/test_fuzz_loaders.py`` runs it briefly on every CI run, beside the Hypothesis tests.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["layers", "geo"]):
    from geo.errors import InputError
    from layers.concessions import read_concessions
    from layers.tables import read_national, read_production

SEEDS = {
    "production.csv": b'concession_id,period,carats,source\nA,2021,"12,500",synthetic\nB,2021-Q3,0,\n',
    "national.csv": b"country,period,carats\nZimbabwe,2021,4100000\n",
    "concessions.geojson": (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"concession_id":"A",'
        b'"holder":"Fictional Mining","status":"active","granted":"2019-01-01"},"geometry":{"type":"Polygon",'
        b'"coordinates":[[[32.3,-19.9],[32.31,-19.9],[32.31,-19.89],[32.3,-19.9]]]}}]}'
    ),
}
WORK = Path(tempfile.mkdtemp(prefix="minewatch-fuzz-"))


def write_seeds(corpus: Path) -> None:
    """Put the seed files into ``corpus`` (if it is empty)."""
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for name, data in SEEDS.items():
            (corpus / name).write_bytes(data)


def test_one_input(data: bytes) -> None:
    """Read ``data`` with each loader; only a result or an InputError is allowed."""
    for name, read in (("p.csv", read_production), ("n.csv", read_national), ("c.geojson", read_concessions)):
        path = WORK / name
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read(path)
        except InputError:
            pass


def main() -> None:
    corpora = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    for corpus in corpora:
        write_seeds(corpus)
    os.environ.setdefault("CPL_LOG", os.devnull)  # GDAL's warnings about broken JSON are expected noise
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
