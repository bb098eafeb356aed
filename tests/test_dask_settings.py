"""layers.dask_client.BATCH_SETTINGS: the environment variables the README gives reach a Dask process as the settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dask.utils import parse_timedelta

from layers.dask_client import BATCH_SETTINGS, batch_settings_environment

README = Path(__file__).resolve().parents[1] / "README.md"


def _normal(value):
    """A setting as Dask uses it: intervals in seconds, the rest as it is."""
    return parse_timedelta(value) if isinstance(value, str) else value


def test_the_environment_variables_give_a_new_dask_process_the_batch_settings():
    names = list(BATCH_SETTINGS)
    probe = f"import dask, distributed, json; print(json.dumps([dask.config.get(k) for k in {names!r}]))"
    plain = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    defaults = json.loads(
        subprocess.run([sys.executable, "-c", probe], env=plain, capture_output=True, text=True, check=True).stdout
    )
    given = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe],
            env={**plain, **batch_settings_environment()},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [_normal(v) for v in given] == [_normal(v) for v in BATCH_SETTINGS.values()]
    assert all(_normal(a) != _normal(b) for a, b in zip(defaults, given, strict=True))  # each one changes something


def test_the_readme_tells_workers_the_same_settings():
    text = README.read_text(encoding="utf-8")
    for name, value in batch_settings_environment().items():
        assert f"{name}={value}" in text
