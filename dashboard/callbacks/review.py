"""Saving a review: team members only, from this site, without losing a colleague's edit."""

import flask
from dash import Input, Output, State, callback, no_update

from dashboard import ids
from dashboard.auth import current_viewer, same_origin
from dashboard.state import state
from dashboard.tables import selection_of


@callback(
    Output(ids.REVIEW_MESSAGE, "children"),
    Output(ids.REVIEW_TICK, "data"),
    Input(ids.REVIEW_SAVE, "n_clicks"),
    State(ids.SELECTION, "data"),
    State(ids.REVIEW_STATUS, "value"),
    State(ids.REVIEW_NOTE, "value"),
    State(ids.REVIEW_ATTACHMENTS, "value"),
    State(ids.REVIEW_VERSION, "data"),
    State(ids.REVIEW_TICK, "data"),
    prevent_initial_call=True,
)
def save_review(clicks, selection, status, note, attachments, version, tick):
    if not clicks:
        return no_update, no_update
    message, saved = store_review(selection, status, note, attachments, version)
    return message, (tick or 0) + 1 if saved else no_update


def store_review(selection: str, status: str, note: str, attachments: str, version: int) -> tuple[str, bool]:
    """Write the review; (message for the user, whether it was saved)."""
    from geo.errors import MinewatchError
    from layers.review_store import ReviewConflict

    viewer = current_viewer()
    st = state()
    if st.review_store is None or not viewer.is_team:
        return "Only signed-in team members can review.", False
    if flask.has_request_context() and not same_origin(flask.request):
        return "Refused: the request did not come from this site.", False
    kind, flag_id = selection_of(selection)
    if kind != "flag":
        return "Select a flag first.", False
    try:
        review = st.review_store.update(
            flag_id,
            status=status,
            note=(note or "").strip(),
            attachments=(attachments or "").split(),
            reviewer=viewer.username,
            expected_version=int(version or 0),
        )
    except ReviewConflict as conflict:
        other = conflict.current
        if other is None:
            return f"Not saved: {conflict}", False
        return (f"Not saved: {other.reviewer} changed this review at {other.updated_at:%H:%M} UTC "
                f"(now {other.status}). Reload the flag to see it, then save again."), False  # fmt: skip
    except MinewatchError as error:  # a bad status or attachment reference
        return f"Not saved: {error}", False
    return f"Saved: {review.status}.", True
