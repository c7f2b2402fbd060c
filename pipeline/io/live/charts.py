"""The ``--serve`` page's charts, drawn on the server as SVG (no script library, nothing from elsewhere):
a camera's counts per interval and line direction or movement, and its lot's occupied and free bays.

Every bar carries what it shows as data (``data-series``, ``data-start``, ``data-count``) and a
tooltip, so a reader (or a test) can check a bar against the events it counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

WIDTH_PX = 720
PLOT_LEFT_PX = 40
PLOT_HEIGHT_PX = 120
LEGEND_PX = 20
AXIS_PX = 18
COLOURS = ("#4e9af1", "#f1a24e", "#62c370", "#d65f5f", "#a97fd6", "#c9b458", "#4ec9c9", "#d67fb5")
OCCUPIED, FREE = "#d65f5f", "#62c370"


def duration_text(interval_ms: int) -> str:
    """A bin length for a title.

    Example:
        >>> duration_text(900_000), duration_text(3_600_000), duration_text(5_000)
        ('15 min', '1 h', '5 s')
    """
    for unit_ms, unit in ((3_600_000, "h"), (60_000, "min")):
        if interval_ms % unit_ms == 0:
            return f"{interval_ms // unit_ms} {unit}"
    return f"{interval_ms / 1000:g} s"


def _clock(iso: str, days: bool, seconds: bool) -> str:
    """``2024-05-07T06:15:00Z`` as ``06:15`` (``05-07 06:15`` when the chart spans days, ``06:15:00``
    when its bins are shorter than minutes)."""
    return f"{iso[5:10]} {iso[11:16]}" if days else iso[11:19] if seconds else iso[11:16]


class _Panel:
    """One bar chart: bins along x (in time order), bars of a bin side by side or stacked."""

    def __init__(self, title: str, top_px: int, starts: Sequence[str], ends: Sequence[str], most: int) -> None:
        self.parts: list[str] = [f'<text x="0" y="{top_px + 12}" class="title">{xml_escape(title)}</text>']
        self.base_px = top_px + LEGEND_PX + 16 + PLOT_HEIGHT_PX
        self.starts, self.ends = starts, ends
        self.most = max(most, 1)
        self.bin_px = (WIDTH_PX - PLOT_LEFT_PX - 4) / max(len(starts), 1)
        self.height_px = LEGEND_PX + 16 + PLOT_HEIGHT_PX + AXIS_PX
        self._axes(days=bool(starts) and starts[0][:10] != ends[-1][:10])

    def _axes(self, days: bool) -> None:
        top = self.base_px - PLOT_HEIGHT_PX
        self.parts.append(f'<line x1="{PLOT_LEFT_PX}" y1="{self.base_px}" x2="{WIDTH_PX}" y2="{self.base_px}"/>')
        self.parts.append(
            f'<text x="{PLOT_LEFT_PX - 4}" y="{top + 8}" class="axis" text-anchor="end">{self.most}</text>'
        )
        self.parts.append(f'<text x="{PLOT_LEFT_PX - 4}" y="{self.base_px}" class="axis" text-anchor="end">0</text>')
        step = max(1, -(-len(self.starts) // 8))  # at most 8 time labels
        seconds = any(start[17:19] != "00" for start in self.starts)
        for index in range(0, len(self.starts), step):
            x = PLOT_LEFT_PX + index * self.bin_px
            label = xml_escape(_clock(self.starts[index], days, seconds))
            self.parts.append(f'<text x="{x:.1f}" y="{self.base_px + 13}" class="axis">{label}</text>')

    def legend(self, names: Sequence[str], colours: Sequence[str], top_px: int) -> None:
        x = 0
        for name, colour in zip(names, colours, strict=True):
            self.parts.append(f'<rect x="{x}" y="{top_px + 18}" width="10" height="10" fill="{colour}"/>')
            self.parts.append(f'<text x="{x + 14}" y="{top_px + 27}">{xml_escape(name)}</text>')
            x += 24 + 7 * len(name)

    def bar(self, index: int, slot: float, width: float, below: int, count: int, series: str, colour: str) -> None:
        """A bar of ``count`` in bin ``index``, ``slot`` bar widths into the bin, on top of ``below``."""
        scale = PLOT_HEIGHT_PX / self.most
        x = PLOT_LEFT_PX + index * self.bin_px + self.bin_px * 0.1 + slot * width
        y = self.base_px - (below + count) * scale
        start, end = self.starts[index], self.ends[index]
        tip = f"{series}, {start} to {end}: {count}"
        self.parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}" height="{count * scale:.1f}" '
            f'fill="{colour}" data-series={quoteattr(series)} data-start="{start}" data-count="{count}">'
            f"<title>{xml_escape(tip)}</title></rect>"
        )
        if count and width >= 12:
            self.parts.append(
                f'<text x="{x + width / 2:.1f}" y="{y - 2:.1f}" class="value" text-anchor="middle">{count}</text>'
            )


def _bins(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The bins the rows cover, in time order: their starts and ends."""
    bins = sorted({(row["interval_start"], row["interval_end"]) for row in rows})
    return [start for start, _ in bins], [end for _, end in bins]


def counts_panel(rows: Sequence[Mapping[str, Any]], interval_ms: int, top_px: int) -> _Panel:
    """Bars per bin, one per line direction and movement (their ``all`` rows from
    :func:`pipeline.store.queries.counts`), side by side."""
    totals = [row for row in rows if row["class_name"] == "all"]
    series = sorted({_series(row) for row in totals})
    value = {(_series(row), row["interval_start"]): int(row["count"]) for row in totals}
    starts, ends = _bins(totals)
    panel = _Panel(
        f"counts per {duration_text(interval_ms)} (UTC)", top_px, starts, ends, max(value.values(), default=0)
    )
    colours = [COLOURS[index % len(COLOURS)] for index in range(len(series))]
    panel.legend(series, colours, top_px)
    width = panel.bin_px * 0.8 / max(len(series), 1)
    for index, start in enumerate(starts):
        for slot, (name, colour) in enumerate(zip(series, colours, strict=True)):
            panel.bar(index, slot, width, 0, value.get((name, start), 0), name, colour)
    return panel


def _series(row: Mapping[str, Any]) -> str:
    """A line's ``main in``; a movement's name (``north->east``)."""
    return f"{row['name']} {row['direction']}" if row["kind"] == "line" else str(row["name"])


def parking_panel(rows: Sequence[Mapping[str, Any]], interval_ms: int, top_px: int) -> _Panel:
    """Occupied bays (below) and free ones (above) at each bin's end, stacked (rows of
    :func:`pipeline.store.queries.parking`, one camera's)."""
    starts, ends = _bins(rows)
    most = max((int(row["slots"]) for row in rows), default=0)
    title = f"parking: occupied and free bays at the end of each {duration_text(interval_ms)} (UTC)"
    panel = _Panel(title, top_px, starts, ends, most)
    panel.legend(["occupied", "free"], [OCCUPIED, FREE], top_px)
    width = panel.bin_px * 0.8
    by_start = {row["interval_start"]: row for row in rows}
    for index, start in enumerate(starts):
        row = by_start[start]
        panel.bar(index, 0, width, 0, int(row["occupied"]), "occupied", OCCUPIED)
        panel.bar(index, 0, width, int(row["occupied"]), int(row["free"]), "free", FREE)
    return panel


def chart_svg(counts: Sequence[Mapping[str, Any]], parking: Sequence[Mapping[str, Any]], interval_ms: int) -> str:
    """One camera's charts as one SVG document: counts, then parking (when the camera watches bays).

    Example:
        >>> row = {"interval_start": "2024-05-07T06:00:00Z", "interval_end": "2024-05-07T06:15:00Z",
        ...        "kind": "line", "name": "main", "direction": "in", "class_name": "all", "count": 3}
        >>> svg = chart_svg([row], [], 900_000)
        >>> 'data-series="main in" data-start="2024-05-07T06:00:00Z" data-count="3"' in svg
        True
    """
    if not counts and not parking:
        return _svg(['<text x="0" y="14">nothing stored for this camera yet</text>'], 24)
    parts: list[str] = []
    top = 0
    for rows, draw in ((counts, counts_panel), (parking, parking_panel)):
        if rows:
            panel = draw(rows, interval_ms, top)
            parts += [f'<g class="{draw.__name__.removesuffix("_panel")}">', *panel.parts, "</g>"]
            top += panel.height_px + 18
    return _svg(parts, top)


def _svg(parts: Sequence[str], height_px: int) -> str:
    style = (
        "<style>text{font:11px system-ui,sans-serif;fill:#ccc}.title{font-weight:bold}"
        ".axis{fill:#999}.value{fill:#eee;font-size:10px}line{stroke:#666}</style>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height_px}" '
        f'viewBox="0 0 {WIDTH_PX} {height_px}" role="img">{style}{"".join(parts)}</svg>'
    )
