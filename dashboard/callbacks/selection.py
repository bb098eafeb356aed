"""One selection (a flag or a concession), from a map click or a table row."""

from dash import Input, Output, State, callback, ctx, no_update

from dashboard import ids


@callback(
    Output(ids.SELECTION, "data"),
    Input(ids.FLAG_TABLE, "selectedRows"),
    Input(ids.FLAGS_LAYER, "clickData"),
    Input(ids.CONCESSIONS_LAYER, "clickData"),
    State(ids.SELECTION, "data"),
    prevent_initial_call=True,
)
def update_selection(table_rows, flag_click, concession_click, current) -> str:
    selection = pick_selection(ctx.triggered_id, table_rows, flag_click, concession_click)
    return selection if selection and selection != current else no_update


def pick_selection(trigger, table_rows, flag_click, concession_click) -> str:
    """``flag:ID`` or ``concession:ID`` for whatever the user just chose ("" if nothing)."""
    if trigger == ids.FLAG_TABLE and table_rows:
        return f"flag:{table_rows[0]['flag_id']}"
    if trigger == ids.FLAGS_LAYER and flag_click:
        return f"flag:{flag_click['properties']['flag_id']}"
    if trigger == ids.CONCESSIONS_LAYER and concession_click:
        return f"concession:{concession_click['properties']['concession_id']}"
    return ""
