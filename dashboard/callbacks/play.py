"""Play: step the period slider through the periods, then stop."""

from dash import Input, Output, State, callback, ctx

from dashboard import ids
from dashboard.state import state


@callback(
    Output(ids.PLAY_TIMER, "disabled"),
    Output(ids.PLAY, "children"),
    Output(ids.PERIOD, "value", allow_duplicate=True),
    Input(ids.PLAY, "n_clicks"),
    Input(ids.PLAY_TIMER, "n_intervals"),
    State(ids.PLAY_TIMER, "disabled"),
    State(ids.PERIOD, "value"),
    prevent_initial_call=True,
)
def step_period(_clicks, _ticks, stopped: bool, period_index: int):
    return next_play_state(ctx.triggered_id, stopped, period_index or 0, len(state().periods))


def next_play_state(trigger: str, stopped: bool, index: int, n_periods: int) -> tuple[bool, str, int]:
    """(timer disabled, button label, slider value) after a click or a tick."""
    last = max(n_periods - 1, 0)
    if trigger == ids.PLAY:
        if stopped:  # start, from the first period if at the end
            return False, "❚❚ Pause", 0 if index >= last else index
        return True, "▶ Play", index
    if index >= last:
        return True, "▶ Play", last
    following = index + 1
    return following >= last, "▶ Play" if following >= last else "❚❚ Pause", following
