"""Pure builder of the details panel: a licence's attributes, its flags and their reasons.

Every text that came from a user's file goes into Dash components as a plain string,
which React renders as text: a holder named ``<script>`` stays a name.
"""

from __future__ import annotations

import pandas as pd
from dash import dcc, html

from dashboard import ids
from dashboard.figures import concession_history_figure
from dashboard.filters import REVIEW_STATUSES
from geo.analysis import Analysis
from geo.flags import FLAG_LABELS

ATTRIBUTES = [
    ("concession_id", "Concession"),
    ("name", "Name"),
    ("holder", "Holder"),
    ("status", "Status"),
    ("mineral", "Mineral"),
    ("licence_type", "Licence type"),
    ("granted", "Granted"),
    ("expires", "Expires"),
    ("status_date", "Status since"),
    ("licence_ha", "Area (ha)"),
]


def details_panel(analysis: Analysis, kind: str, identifier: str, period: str, review: dict | None = None) -> list:
    """Components describing the selection (a flag or a concession).

    ``review`` (for a flag) is ``{"current": Review or None, "history": [...], "team": bool}``;
    its notes, reviewers and history are shown only when ``team`` is true.
    """
    flags = analysis.flags
    if kind == "flag":
        rows = flags[flags["flag_id"] == identifier]
        if rows.empty:
            return [html.P("That flag is not in this analysis.", className="hint")]
        flag = rows.iloc[0]
        children = [html.H2(FLAG_LABELS.get(flag["flag_type"], flag["flag_type"])), flag_card(flag, open_reason=True)]
        if review is not None:
            children += review_section(review)
        concession_id = flag["concession_id"]
        if isinstance(concession_id, str):
            children += concession_section(analysis, concession_id, period, skip_flag=identifier)
        return children
    if kind == "concession":
        return concession_section(analysis, identifier, period)
    return [
        html.P("Click a concession or a flag, or choose a row in the table, to see the evidence.", className="hint")
    ]


def concession_section(analysis: Analysis, concession_id: str, period: str, skip_flag: str = "") -> list:
    concessions = analysis.concessions
    rows = concessions[concessions["concession_id"] == concession_id]
    if rows.empty:
        return [html.P(f"Concession {concession_id} is not in this analysis.", className="hint")]
    licence = rows.iloc[0]
    table = html.Table(
        className="attributes",
        children=[
            html.Tr([html.Th(label), html.Td(_text(licence.get(column)))])
            for column, label in ATTRIBUTES
            if column in licence.index and _text(licence.get(column))
        ],
    )
    own = analysis.flags[
        ((analysis.flags["concession_id"] == concession_id) | (analysis.flags["other_concession_id"] == concession_id))
        & (analysis.flags["flag_id"] != skip_flag)
    ].sort_values(["period", "score"], ascending=[True, False])
    flag_list = [flag_card(f, open_reason=f["period"] == period) for _, f in own.iterrows()]
    return [
        html.H3(f"Licence {concession_id}"),
        table,
        html.H3(f"Its flags ({len(own)})" if not skip_flag else f"Its other flags ({len(own)})"),
        html.Div(flag_list or html.P("No flag.", className="hint"), className="flag-list"),
        dcc.Graph(id=ids.DETAILS_CHART, figure=concession_history_figure(analysis.stats, concession_id),
                  config={"displaylogo": False, "displayModeBar": False}),
    ]  # fmt: skip


def review_section(review: dict) -> list:
    """The flag's review: status for everyone; note, history and the form for the team."""
    current = review.get("current")
    status = current.status if current else "new"
    children = [html.P(["Review status: ", html.Strong(status)], className="review-status")]
    if not review.get("team"):
        if review.get("enabled"):
            children.append(html.P("Team members sign in to review.", className="hint"))
        return children
    if current:
        children.append(html.P(f"by {current.reviewer} on {current.updated_at:%Y-%m-%d %H:%M} UTC", className="hint"))
        if current.note:
            children.append(html.Blockquote(current.note, className="review-note"))
        if current.attachments:
            children.append(html.P("Attachments: " + ", ".join(current.attachments), className="hint"))
    children += [
        html.H3("Update the review"),
        dcc.RadioItems(id=ids.REVIEW_STATUS, options=list(REVIEW_STATUSES), value=status, inline=True,
                       className="review-choices"),
        dcc.Textarea(id=ids.REVIEW_NOTE, value=current.note if current else "", placeholder="what was found",
                     className="review-note-input"),
        dcc.Input(id=ids.REVIEW_ATTACHMENTS, type="text", value=" ".join(current.attachments) if current else "",
                  placeholder="attachment references (file names or links), separated by spaces",
                  className="review-attachments-input"),
        dcc.Store(id=ids.REVIEW_VERSION, data=current.version if current else 0),
        html.Button("Save review", id=ids.REVIEW_SAVE, n_clicks=0),
        html.Div(id=ids.REVIEW_MESSAGE, className="review-message"),
    ]  # fmt: skip
    history = review.get("history") or []
    if history:
        children.append(html.H3(f"History ({len(history)})"))
        children.append(html.Ul([
            html.Li(f"{event.changed_at:%Y-%m-%d %H:%M} {event.reviewer}: {event.old_status or 'new'} → "
                    f"{event.new_status}" + (f" ({event.note})" if event.note else ""))
            for event in reversed(history)
        ], className="review-history"))  # fmt: skip
    return children


def flag_card(flag: pd.Series, open_reason: bool) -> html.Details:
    summary = f"{flag['period']} · {FLAG_LABELS.get(flag['flag_type'], flag['flag_type'])} · {flag['severity']} ({flag['score']:.2f})"
    return html.Details(
        open=bool(open_reason),
        className=f"flag-card severity-{flag['severity']}",
        children=[html.Summary(summary), html.P(_text(flag["reason"])), html.Small(f"flag id {flag['flag_id']}")],
    )


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)
