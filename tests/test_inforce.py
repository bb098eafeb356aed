"""The in-force rule, one row of the design's table at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from geo.inforce import in_force
from geo.periods import parse_period

T = pd.Timestamp


@pytest.mark.parametrize(
    ("status", "granted", "expires", "status_date", "period", "expected"),
    [
        ("active", "2010-01-01", None, None, "2021", True),
        ("active", "2022-03-01", None, None, "2021", False),  # not yet granted
        ("active", "2021-12-31", None, None, "2021", True),  # granted on the last day
        ("active", None, "2019-06-30", None, "2020", False),  # past its expiry date
        ("application", "2010-01-01", None, None, "2021", False),
        ("suspended", "2010-01-01", None, "2020-07-01", "2020", True),  # suspended mid-year
        ("suspended", "2010-01-01", None, "2020-07-01", "2021", False),
        ("suspended", "2010-01-01", None, "2020-01-01", "2020", False),  # from the first day
        ("suspended", "2010-01-01", None, None, "2015", False),  # no date: throughout
        ("revoked", "2010-01-01", None, "2019-06-30", "2019-Q2", True),
        ("revoked", "2010-01-01", None, "2019-06-30", "2019-Q3", False),
        ("revoked", "2010-01-01", None, None, "2012", False),
        ("expired", "2010-01-01", "2017-12-31", None, "2017", True),  # before expiry
        ("expired", "2010-01-01", "2017-12-31", None, "2018", False),  # after expiry
        ("expired", "2010-01-01", None, None, "2012", False),
        ("expired", "2010-01-01", None, "2015-05-01", "2015-05", True),
    ],
)
def test_in_force_table(status, granted, expires, status_date, period, expected):
    row = pd.DataFrame(
        {
            "status": [status],
            "granted": [T(granted) if granted else pd.NaT],
            "expires": [T(expires) if expires else pd.NaT],
            "status_date": [T(status_date) if status_date else pd.NaT],
        }
    )
    assert bool(in_force(row, parse_period(period)).iloc[0]) is expected
