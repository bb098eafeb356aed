"""Pure figure builders: analysis tables to Plotly figures (no Dash, no state)."""

from __future__ import annotations

import html as html_text

import pandas as pd
import plotly.graph_objects as go
from dash import html

from geo.periods import parse_period

ACTIVE_COLOUR = "#D55E00"
CARATS_COLOUR = "#0072B2"
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12)


def _base_layout(title: str) -> dict:
    return dict(
        title=dict(text=title, font=dict(size=13)),
        font=FONT,
        margin=dict(l=50, r=50, t=36, b=36),
        height=240,
        legend=dict(orientation="h", y=-0.25),
        plot_bgcolor="white",
        barmode="group",
    )


def concession_history_figure(stats: pd.DataFrame, concession_id: str) -> go.Figure:
    """Active hectares and reported carats per period for one concession, side by side.

    Periods without a production record show no carats bar (and say so on hover),
    which is different from a report of 0.
    """
    rows = stats[stats["concession_id"] == concession_id].copy()
    rows = rows.sort_values("period", key=lambda s: s.map(lambda p: parse_period(p).start))
    periods = rows["period"].astype(str).tolist()
    carats_text = ["no report" if pd.isna(c) else f"{c:,.0f} ct" for c in rows["carats"]]
    figure = go.Figure()
    figure.add_bar(
        x=periods, y=rows["active_ha"], name="active ha (satellite)", marker_color=ACTIVE_COLOUR,
        offsetgroup="active", hovertemplate="%{x}: %{y:,.1f} ha active<extra></extra>",
    )  # fmt: skip
    figure.add_bar(
        x=periods, y=rows["carats"], name="carats reported", marker_color=CARATS_COLOUR, yaxis="y2",
        offsetgroup="carats", customdata=carats_text, hovertemplate="%{x}: %{customdata}<extra></extra>",
    )  # fmt: skip
    figure.update_layout(
        # Plotly titles are markup: escape the id so a name like X<b>1</b> stays text.
        **_base_layout(f"{html_text.escape(concession_id, quote=False)}: activity and reported production"),
        xaxis=dict(type="category"),
        yaxis=dict(title="active ha", rangemode="tozero", color=ACTIVE_COLOUR),
        yaxis2=dict(title="carats", overlaying="y", side="right", rangemode="tozero", color=CARATS_COLOUR),
    )
    return figure


def national_table(national: pd.DataFrame, tolerance_pct: float = 10.0) -> html.Table:
    """National totals against the sum of concession reports, as a table with bars.

    Plain HTML (no plotting library), so the page's first load stays small; each row
    draws both quantities as bars on one scale and marks differences beyond the
    tolerance. Periods without any concession report say so instead of showing 0.
    """
    if national.empty:
        return html.P("No national totals in this analysis.", className="hint")
    table = national.copy()
    table["period"] = table["period"].astype(str)
    table = table.sort_values(
        ["country", "period"], key=lambda s: s.map(lambda p: parse_period(p).start) if s.name == "period" else s
    )
    scale = float(max(table["national_carats"].max(), table["reported_carats"].max(), 1.0))
    rows = []
    for row in table.itertuples(index=False):
        reported = row.reported_carats if row.reports > 0 else None
        difference = "" if reported is None or pd.isna(row.difference_pct) else f"{row.difference_pct:+.0f} %"
        flagged = reported is not None and not pd.isna(row.difference_pct) and abs(row.difference_pct) > tolerance_pct
        rows.append(
            html.Tr(
                className="flagged" if flagged else "",
                children=[
                    html.Td(str(row.country)),
                    html.Td(row.period),
                    html.Td(f"{row.national_carats:,.0f}", className="number"),
                    html.Td("no report" if reported is None else f"{reported:,.0f}", className="number"),
                    html.Td(difference + (" ⚑" if flagged else ""), className="number"),
                    html.Td(
                        className="bars",
                        children=[
                            html.Div(
                                className="bar national", style={"width": f"{100 * row.national_carats / scale:.1f}%"}
                            ),
                            html.Div(
                                className="bar reported", style={"width": f"{100 * (reported or 0) / scale:.1f}%"}
                            ),
                        ],
                    ),
                ],
            )
        )
    head = html.Tr(
        [
            html.Th(h)
            for h in ("Country", "Period", "National total (ct)", "Sum of concession reports (ct)", "Difference", "")
        ]
    )
    return html.Table(className="national", children=[html.Thead(head), html.Tbody(rows)])
