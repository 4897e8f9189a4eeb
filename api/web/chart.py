"""The meter page's consumption chart: server-rendered SVG bars (pygal), no script, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pygal
from pygal.style import Style

__all__ = ["consumption_svg"]

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#cbd5e1",
    colors=("#2563eb",),
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=10,
    tooltip_font_size=12,
)
_LABEL = {"hour": "%H:%M", "day": "%a %d.%m", "month": "%b %Y"}


def consumption_svg(
    starts: Sequence[datetime], values: Sequence[float | None], interval: str, unit: str
) -> str:
    """One bar per interval (none where the consumption is unknown), labelled in local time."""
    chart = pygal.Bar(
        style=_STYLE,
        js=[],  # pygal's default tooltip script comes from a CDN: none, pages work offline
        width=960,
        height=320,
        show_legend=False,
        show_minor_x_labels=False,
        x_label_rotation=30 if len(starts) > 12 else 0,
        y_title=unit,
        print_values=False,
        margin=8,
        disable_xml_declaration=True,
        no_data_text="no consumption in this range",
    )
    labels = [s.strftime(_LABEL[interval]) for s in starts]
    chart.x_labels = labels
    step = max(1, len(labels) // 16)
    chart.x_labels_major = labels[::step]
    chart.add(unit, [None if v is None else round(v, 6) for v in values])
    svg: str = chart.render(is_unicode=True)
    return svg
