"""The files of ``vpipe report --tmc``: the TMC table and the peak-hour table as CSV files or as sheets
of one workbook, and the intersection diagram (PNG) with each approach's peak-hour vehicles per turn
on its arrows.

Workbook sheets (``.xlsx``): ``tmc`` (the table, :attr:`~pipeline.store.tmc.TmcLayout.columns` after
:data:`~pipeline.config.columns.TMC_HEAD`) and ``peak_hour`` (:data:`~pipeline.store.tmc.PEAK_COLUMNS`).
CSV: ``NAME.csv`` and ``NAME_peak_hour.csv``. The diagram is ``NAME.png`` beside them (one per camera,
``NAME_<camera>.png``, when the store holds several).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from pipeline.analytics.approaches import Approach, Intersection
from pipeline.analytics.turns import inbound_heading
from pipeline.config import Config
from pipeline.config.columns import TMC_HEAD
from pipeline.errors import OutputError
from pipeline.geometry import Point
from pipeline.store.tmc import PEAK_COLUMNS, Tmc
from pipeline.store.workbook import write_workbook

DIAGRAM_PX = 800
"""The diagram's width and height in pixels."""
_DPI = 100
_GLYPHS = {"u_turn": (-0.1, -0.12), "left": (0.14, -0.2), "through": (0.2, 0.0), "right": (0.08, 0.16)}
"""Where each turn's arrow ends: so far along the way in and so far to its right (negative: left), in
the diagram's units (a leg is 0.6 long)."""


def leg_directions(config: Config) -> dict[str, Point]:
    """Per approach of ``config``, the unit direction from the intersection out along its leg (as on
    the image: y down), the opposite of a vehicle's heading entering by it."""
    approaches = {a.name: Approach.placed(a.polygon, a.gate) for a in config.movements.approaches}
    if len(approaches) < 2:
        return {}
    centre = Intersection(approaches).centre
    return {name: (-dx, -dy) for name, approach in approaches.items() for dx, dy in [inbound_heading(approach, centre)]}


def _even_directions(names: Sequence[str]) -> dict[str, Point]:
    """Approaches spread evenly around the circle, the first to the north, clockwise (no geometry known)."""
    step = 2 * math.pi / max(1, len(names))
    return {name: (math.sin(i * step), -math.cos(i * step)) for i, name in enumerate(names)}


def write_diagram(
    volumes: Mapping[str, Mapping[str, int]],
    directions: Mapping[str, Point],
    title: str,
    path: Path,
) -> None:
    """The intersection as its legs (placed by ``directions``, else evenly round the circle) and, on
    each leg's inbound side, an arrow per turn (U-turn, left, through, right) with its volume at the tip.

    Args:
        volumes: Per approach, its vehicles per turn (``left``, ``through``, ``right``, ``u_turn``).
        directions: Per approach, the unit direction from the intersection out along its leg (image axes).
        title: Above the diagram.
        path: The PNG to write.
    """
    approaches = list(volumes)
    placed = {name: directions[name] for name in approaches if name in directions}
    if len(placed) != len(approaches):
        placed = _even_directions(approaches)
    figure = Figure(figsize=(DIAGRAM_PX / _DPI, DIAGRAM_PX / _DPI), dpi=_DPI)
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.9))
    axes.set_xlim(-1.25, 1.25)
    axes.set_ylim(1.25, -1.25)  # image orientation: y down
    axes.set_aspect("equal")
    axes.axis("off")
    figure.suptitle(title, fontsize=11)
    for name, (ux, uy) in placed.items():
        axes.plot([0.45 * ux, 1.05 * ux], [0.45 * uy, 1.05 * uy], color="0.88", linewidth=34, solid_capstyle="butt")
        axes.text(1.15 * ux, 1.15 * uy, name, ha="center", va="center", fontsize=12, fontweight="bold")
        heading = (-ux, -uy)  # entering
        right = (-heading[1], heading[0])  # image y points down: this is the driver's right
        # The inbound half of the leg (right of the way in), at the leg's inner end.
        base = (0.48 * ux + 0.05 * right[0], 0.48 * uy + 0.05 * right[1])
        for turn, (along, across) in _GLYPHS.items():
            count = volumes[name].get(turn, 0)
            tip = (
                base[0] + along * heading[0] + across * right[0],
                base[1] + along * heading[1] + across * right[1],
            )
            bend = {"left": 0.35, "right": -0.35, "u_turn": 1.0}.get(turn, 0.0)
            colour = "black" if count else "0.6"
            arc = f"arc3,rad={bend}"
            arrow = FancyArrowPatch(
                base, tip, arrowstyle="-|>", mutation_scale=12, color=colour, connectionstyle=arc, zorder=3
            )
            axes.add_patch(arrow)
            reach = math.hypot(tip[0] - base[0], tip[1] - base[1])
            label = (tip[0] + 0.08 * (tip[0] - base[0]) / reach, tip[1] + 0.08 * (tip[1] - base[1]) / reach)
            box = {"fc": "white", "ec": colour, "pad": 1.5}
            axes.text(*label, str(count), ha="center", va="center", fontsize=9, color=colour, bbox=box)
    try:
        figure.savefig(str(path), dpi=_DPI)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_tmc(result: Tmc, output: Path, kind: str, directions: Mapping[str, Point]) -> list[Path]:
    """Write the TMC as ``kind`` (``csv`` or ``xlsx``) at ``output`` with its diagram(s); the paths written."""
    columns = [*TMC_HEAD, *result.layout.columns]
    tables = {"tmc": (columns, result.rows()), "peak_hour": (PEAK_COLUMNS, result.peak_rows())}
    written = []
    if kind == "xlsx":
        write_workbook(tables, output)
        written.append(output)
    else:
        for name, (table_columns, rows) in tables.items():
            path = output if name == "tmc" else output.with_name(f"{output.stem}_{name}.csv")
            _write_csv(table_columns, rows, path)
            written.append(path)
    cameras = sorted(result.bins)
    peaks = tables["peak_hour"][1]
    for camera in cameras:
        path = output.with_suffix(".png") if len(cameras) == 1 else output.with_name(f"{output.stem}_{camera}.png")
        rows = {row["approach"]: row for row in peaks if row["camera"] == camera and row["approach"] != "all"}
        first = next(iter(rows.values()), None)
        when = f"peak hour {first['peak_hour_start']} - {first['peak_hour_end']}" if first else "no peak hour"
        volumes = {a: rows.get(a, {}) for a in result.layout.approaches}
        write_diagram(volumes, directions, f"{camera}: vehicles per turn, {when}", path)
        written.append(path)
    return written


def _write_csv(columns: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
