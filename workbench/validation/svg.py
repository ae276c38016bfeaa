"""Small charts as inline SVG text, for reports that must open anywhere and stay small.

A validation report used to inline Bokeh's JavaScript for two charts: 3.9 MB for a batch of
eight rows. These charts are drawn here, in a few kilobytes, with no script at all; each bar
and point carries a ``<title>``, so the browser shows its exact value on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 760
BAR_COLOR, LINE_COLOR, TEXT = "#c0504d", "#30a2da", "#333"
CHAR_PX = 7  # width of one character of the 12 px labels, near enough to lay out a column
ROW_PX, TITLE_PX = 24, 28
LABEL_PX = 320  # a longer label is shortened with "…"; the whole of it shows on hover
MAX_X_LABELS = 12  # more batches than this: label every k-th one so the labels stay apart


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], notes: Sequence[str]):
    """Horizontal bars, one per label, longest first as given; ``notes`` follow each bar."""
    label_px = min(LABEL_PX, CHAR_PX * max((len(str(s)) for s in labels), default=1) + 12)
    fits = (label_px - 12) // CHAR_PX
    span = WIDTH - label_px - 150  # room for the note after the longest bar
    top = max(values, default=0) or 1
    height = TITLE_PX + ROW_PX * len(labels) + 8
    parts = [_open(height, title), _text(0, 18, title, weight="600")]
    for k, (label, value, note) in enumerate(zip(labels, values, notes, strict=True)):
        y = TITLE_PX + k * ROW_PX
        length = max(1.0, span * value / top)
        parts += [
            f'<g class="bar"><title>{escape(f"{label}: {note}")}</title>',
            _text(label_px - 8, y + 16, _shortened(str(label), fits), anchor="end"),
            f'<rect x="{label_px}" y="{y + 4}" width="{length:.1f}" height="{ROW_PX - 8}" '
            f'fill="{BAR_COLOR}"/>',
            _text(label_px + length + 6, y + 16, note),
            "</g>",
        ]
    return "".join([*parts, "</svg>"])


def line_chart(title: str, labels: Sequence[str], values: Sequence[float], unit: str = ""):
    """A line over the labels in order (batches oldest first), a point with its value each."""
    height, left, right, top, bottom = 260, 110, 16, TITLE_PX + 6, 90  # room for slanted labels
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    high = max(values, default=0) or 1
    step = plot_w / max(len(values) - 1, 1)
    points = [(left + k * step, top + plot_h * (1 - v / high)) for k, v in enumerate(values)]
    every = -(-len(labels) // MAX_X_LABELS)
    parts = [
        _open(height, title),
        _text(0, 18, title, weight="600"),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
        f'stroke="#999"/>',
        _text(left - 6, top + 4, f"{high:.3g}{unit}", anchor="end"),
        _text(left - 6, top + plot_h, f"0{unit}", anchor="end"),
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
            LINE_COLOR, " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        ),
    ]
    for k, ((x, y), label, value) in enumerate(zip(points, labels, values, strict=True)):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{LINE_COLOR}">'
            f"<title>{escape(f'{label}: {value:.3f}{unit}')}</title></circle>"
        )
        if k % every == 0:
            below = top + plot_h + 12
            parts.append(
                f'<text x="{x:.1f}" y="{below}" font-size="11" fill="{TEXT}" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {below})">{escape(str(label))}</text>'
            )
    return "".join([*parts, "</svg>"])


def _shortened(text: str, fits: int) -> str:
    return text if len(text) <= fits else text[: fits - 1] + "…"


def _open(height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="system-ui, sans-serif" '
        f'aria-label="{escape(title)}">'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", weight: str = "400") -> str:
    return (
        f'<text x="{x:.1f}" y="{y}" font-size="12" fill="{TEXT}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{escape(text)}</text>'
    )
