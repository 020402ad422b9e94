"""Charts rendered on the server as SVG: they need no script, no CDN and no internet access."""

from datetime import date
from decimal import Decimal
from html import escape

PALETTE = ("#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316", "#64748b", "#ec4899")
OTHER = "other"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_ceiling(value: Decimal) -> Decimal:
    """A round axis maximum at or above value: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        candidate = Decimal(step).scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)


def stacked_bars(
    *,
    days: list[date],
    series: list[tuple[str, dict[date, Decimal]]],
    currency: str,
    width: int = 880,
    height: int = 260,
) -> str:
    """Cost per day, one bar per day stacked by series (cost center or model); each segment has a tooltip."""
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum((values.get(day, Decimal(0)) for _, values in series), Decimal(0)) for day in days]
    ceiling = _nice_ceiling(max(totals, default=Decimal(0)))
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.72, 1.0)
    label_every = max(1, -(-len(days) // 12))  # at most about twelve date labels
    parts = [
        f'<svg class="chart" role="img" aria-label="Cost per day" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" data-chart="daily-cost">'
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        label = ceiling * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{label:.2f}</text>')
    for index, day in enumerate(days):
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h
        for position, (name, values) in enumerate(series):
            value = values.get(day, Decimal(0))
            if value <= 0:
                continue
            h = float(value / ceiling) * plot_h  # pixels only; money stays Decimal
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{color(position)}"><title>{day:%Y-%m-%d} {escape(name)}: {value:.2f} {currency}</title></rect>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" class="axis" text-anchor="middle">{day:%d %b}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def legend(names: list[str]) -> list[tuple[str, str]]:
    return [(name, color(i)) for i, name in enumerate(names)]
