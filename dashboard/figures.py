"""Pure figure builders: analysis tables to Plotly figures (no Dash, no state)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from geo.periods import parse_period

ACTIVE_COLOUR = "#D55E00"
CARATS_COLOUR = "#0072B2"
NATIONAL_COLOUR = "#444444"
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
        **_base_layout(f"{concession_id}: activity and reported production"),
        xaxis=dict(type="category"),
        yaxis=dict(title="active ha", rangemode="tozero", color=ACTIVE_COLOUR),
        yaxis2=dict(title="carats", overlaying="y", side="right", rangemode="tozero", color=CARATS_COLOUR),
    )
    return figure


def national_figure(national: pd.DataFrame) -> go.Figure:
    """National totals against the sum of concession reports, per country and period."""
    figure = go.Figure()
    if national.empty:
        figure.update_layout(**_base_layout("No national totals in this analysis"))
        return figure
    table = national.copy()
    table["period"] = table["period"].astype(str)
    table = table.sort_values("period", key=lambda s: s.map(lambda p: parse_period(p).start))
    for country, rows in table.groupby("country", sort=True):
        label = f" ({country})" if table["country"].nunique() > 1 else ""
        figure.add_bar(
            x=rows["period"], y=rows["national_carats"], name=f"national total{label}", marker_color=NATIONAL_COLOUR,
            hovertemplate="%{x}: %{y:,.0f} ct national<extra></extra>",
        )  # fmt: skip
        reported = rows["reported_carats"].where(rows["reports"] > 0)
        figure.add_bar(
            x=rows["period"], y=reported, name=f"sum of concession reports{label}", marker_color=CARATS_COLOUR,
            customdata=rows["difference_pct"],
            hovertemplate="%{x}: %{y:,.0f} ct reported (%{customdata:+.0f} %)<extra></extra>",
        )  # fmt: skip
    countries = ", ".join(sorted(table["country"].unique()))
    figure.update_layout(
        **_base_layout(f"National totals vs concession reports: {countries}"),
        xaxis=dict(type="category"),
        yaxis=dict(title="carats", rangemode="tozero"),
    )
    return figure
