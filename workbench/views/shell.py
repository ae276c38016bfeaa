"""The frame every app shares: a template with a link back to the index, errors shown to users."""

from __future__ import annotations

import logging

import panel as pn
from panel.io import JSCode

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


class _Immediate:
    """A widget whose change reaches the server at once.

    Panel holds every change from the browser for 50 ms (``Syncable._debounce``) so that a
    slider being dragged or text being typed arrives as one change. A pick from a list, a tick
    or a button is one change already, and the wait was a sixth of the explorer's 300 ms budget
    per interaction. Panel's Tabulator makes the same exception for its data and filters.
    """

    _priority_changes = ["value"]


class Select(_Immediate, pn.widgets.Select):
    pass


class MultiChoice(_Immediate, pn.widgets.MultiChoice):
    pass


class RadioButtonGroup(_Immediate, pn.widgets.RadioButtonGroup):
    pass


class Checkbox(_Immediate, pn.widgets.Checkbox):
    pass


# A cell too long for its column shows its whole text on hover; one that fits shows nothing
# (a tooltip on every cell lingered over the table after each click).
_TOOLTIPS = {
    "columnDefaults": {
        "tooltip": JSCode(
            "(e, cell) => { const el = cell.getElement();"
            " return el.scrollWidth > el.clientWidth ? String(cell.getValue()) : false; }"
        )
    }
}
CHAR_PX, PAD_PX, MAX_TEXT_PX = 9, 40, 520  # 40 characters fit; longer ones show on hover


def paged_table(value=None, *, page_size: int = 20, **params) -> pn.widgets.Tabulator:
    """A read-only table, paginated on the server: the browser gets one page at a time."""
    return pn.widgets.Tabulator(
        value,
        pagination="remote",
        page_size=page_size,
        show_index=False,
        disabled=True,
        sizing_mode="stretch_width",
        configuration=_TOOLTIPS,
        **params,
    )


def text_widths(frame, titles: dict[str, str]) -> dict[str, int]:
    """Pixel widths for the text columns in ``titles`` that fit their longest value and header.

    Tabulator sizes columns to the first data it shows and keeps those widths when new data
    arrives through remote pagination (it renders "in position"): after the explorer drilled
    from carriers (``UA``) to time zones, ``America/Los_Angeles`` was cut at the column's edge.
    Widths go in steps of 40 px, so a small change of the data rebuilds no column.
    """
    widths = {}
    for field, title in titles.items():
        values = frame[field].dropna().astype(str)
        longest = max(len(title), int(values.str.len().max()) if len(values) else 0)
        px = min(MAX_TEXT_PX, PAD_PX + CHAR_PX * longest)
        widths[field] = -(-px // 40) * 40
    return widths


def show_error(exc: Exception) -> None:
    """A callback failed: tell the user in words (the workbench's messages say what to do)."""
    message = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
    log.warning("dashboard callback failed: %s", message)
    if pn.state.notifications is not None:
        pn.state.notifications.error(message, duration=10000)


def while_loading(target: pn.viewable.Viewable, work) -> None:
    """Show ``target``'s loading spinner, then run ``work`` on the next tick of the server loop,
    so the browser receives the spinner before the (possibly slow) query starts. Outside a
    server, ``work`` runs at once."""
    target.loading = True

    def run() -> None:
        try:
            work()
        finally:
            target.loading = False

    pn.state.execute(run, schedule=True)


def dashboard(title: str, main: list, sidebar: list | None = None) -> pn.template.BaseTemplate:
    """A page titled ``Workbench · <title>`` with the shared error handler.

    Bootstrap, because it is served whole by Panel: the Fast and Material templates fetch fonts
    from Google, which an offline site cannot reach and a private one should not call.
    """
    pn.config.exception_handler = show_error
    header = pn.pane.HTML(
        '<a href="./" style="color: white; text-decoration: none">all dashboards</a>',
        sizing_mode="fixed",
        width=140,
        height=24,
        margin=(18, 10),
    )
    return pn.template.BootstrapTemplate(
        title=f"Workbench · {title}",
        main=main,
        sidebar=sidebar or [],
        header=[header],
        sidebar_width=320,
        header_background="#0072b5",
    )
