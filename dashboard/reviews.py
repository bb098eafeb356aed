"""Review status on flags, as each kind of viewer may see it.

Everyone sees a flag's review status (:data:`REVIEW_STATUSES`); only
team members see notes, attachments, reviewers and times. This module decides which
columns a viewer gets, so the map, the table, the details panel and every export apply
the same rule on the server.
"""

from __future__ import annotations

import pandas as pd

from dashboard.auth import Viewer


def with_reviews(flags: pd.DataFrame, reviews: dict, viewer: Viewer) -> pd.DataFrame:
    """``flags`` plus the review columns ``viewer`` may see (never reviewed = "new")."""
    out = flags.copy()
    current = [reviews.get(flag_id) for flag_id in out["flag_id"]]
    out["review_status"] = [r.status if r else "new" for r in current]
    if viewer.is_team:
        out["review_note"] = [r.note if r else "" for r in current]
        out["review_attachments"] = [" ".join(r.attachments) if r else "" for r in current]
        out["reviewer"] = [r.reviewer if r else "" for r in current]
        out["reviewed_at"] = [r.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ") if r else "" for r in current]
        out["review_version"] = [r.version if r else 0 for r in current]
    return out


def review_hideout(flags: pd.DataFrame) -> dict:
    """Statuses other than "new" of flags from :func:`with_reviews`, for the map's flag style."""
    reviewed = flags[flags["review_status"] != "new"]
    return dict(zip(reviewed["flag_id"], reviewed["review_status"], strict=True))
