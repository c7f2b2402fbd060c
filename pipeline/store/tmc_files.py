"""The files of ``vpipe report --tmc``: the TMC table and the peak-hour table as CSV files or as sheets
of one workbook, and the intersection diagram (PNG) with each movement's peak-hour volume on its arrow.

Workbook sheets (``.xlsx``): ``tmc`` (the table, :attr:`~pipeline.store.tmc.TmcLayout.columns` after
``camera, interval_start, interval_end``) and ``peak_hour`` (:data:`~pipeline.store.tmc.PEAK_COLUMNS`).
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
from pipeline.errors import OutputError
from pipeline.geometry import Point
from pipeline.store.tmc import PEAK_COLUMNS, Tmc

DIAGRAM_PX = 800
"""The diagram's width and height in pixels."""
_DPI = 100


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
    volumes: Mapping[tuple[str, str], int],
    approaches: Sequence[str],
    directions: Mapping[str, Point],
    title: str,
    path: Path,
) -> None:
    """The intersection as its legs (placed by ``directions``, else evenly) with an arrow per movement
    with any volume, from its origin's leg to its destination's (U-turns loop back), labelled with the
    volume."""
    placed = {name: directions[name] for name in approaches if name in directions}
    if len(placed) != len(approaches):
        placed = _even_directions(approaches)
    figure = Figure(figsize=(DIAGRAM_PX / _DPI, DIAGRAM_PX / _DPI), dpi=_DPI)
    axes = figure.add_axes((0.05, 0.05, 0.9, 0.85))
    axes.set_xlim(-1.3, 1.3)
    axes.set_ylim(1.3, -1.3)  # image orientation: y down
    axes.set_aspect("equal")
    axes.axis("off")
    figure.suptitle(title, fontsize=11)
    for name, (dx, dy) in placed.items():
        axes.plot([0.25 * dx, 1.05 * dx], [0.25 * dy, 1.05 * dy], color="0.75", linewidth=28, solid_capstyle="butt")
        axes.text(1.2 * dx, 1.2 * dy, name, ha="center", va="center", fontsize=12, fontweight="bold")
    for (origin, destination), volume in sorted(volumes.items()):
        if volume <= 0 or origin not in placed or destination not in placed:
            continue
        (ox, oy), (ex, ey) = placed[origin], placed[destination]
        # Enter on the right half of the origin's leg (as driven), leave on the right half of the destination's.
        start = (0.8 * ox + 0.08 * oy, 0.8 * oy - 0.08 * ox)
        end = (0.8 * ex - 0.08 * ey, 0.8 * ey + 0.08 * ex)
        bend = 0.9 if origin == destination else 0.2
        arrow = FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.6, connectionstyle=f"arc3,rad={bend}"
        )
        axes.add_patch(arrow)
        # The middle of matplotlib's arc3 curve: the chord's middle moved by rad / 2 across the chord.
        dx, dy = end[0] - start[0], end[1] - start[1]
        middle = ((start[0] + end[0]) / 2 + bend * dy / 2, (start[1] + end[1]) / 2 - bend * dx / 2)
        axes.text(*middle, str(volume), ha="center", va="center", fontsize=9, bbox={"fc": "white", "ec": "0.5"})
    try:
        figure.savefig(str(path), dpi=_DPI)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_tmc(result: Tmc, output: Path, kind: str, directions: Mapping[str, Point]) -> list[Path]:
    """Write the TMC as ``kind`` (``csv`` or ``xlsx``) at ``output`` with its diagram(s); the paths written."""
    columns = ["camera", "interval_start", "interval_end", *result.layout.columns]
    tables = {"tmc": (columns, result.rows()), "peak_hour": (PEAK_COLUMNS, result.peak_rows())}
    written = []
    if kind == "xlsx":
        _write_workbook(tables, output)
        written.append(output)
    else:
        for name, (table_columns, rows) in tables.items():
            path = output if name == "tmc" else output.with_name(f"{output.stem}_{name}.csv")
            _write_csv(table_columns, rows, path)
            written.append(path)
    cameras = sorted(result.bins)
    for camera in cameras:
        path = output.with_suffix(".png") if len(cameras) == 1 else output.with_name(f"{output.stem}_{camera}.png")
        peak = next((row for row in result.peak_rows() if row["camera"] == camera), None)
        when = f"peak hour {peak['peak_hour_start']} - {peak['peak_hour_end']}" if peak else "no peak hour"
        volumes = result.pair_volumes(camera)
        write_diagram(volumes, result.layout.approaches, directions, f"{camera}: vehicles, {when}", path)
        written.append(path)
    return written


def _write_workbook(tables: Mapping[str, tuple[list[str], list[dict[str, Any]]]], output: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, (columns, rows) in tables.items():
        sheet = workbook.create_sheet(title)
        sheet.append(columns)
        for row in rows:
            sheet.append([row[column] for column in columns])
    try:
        workbook.save(output)
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None


def _write_csv(columns: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
