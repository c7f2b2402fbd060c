"""Run plots: ``counts.png`` (counts over time, from counts.csv) and ``heatmap.png``.

Matplotlib's object API (no pyplot), so nothing global changes and no display is needed.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from pipeline.analytics.heatmap import Heatmap
from pipeline.analytics.views import MovementsView
from pipeline.annotators.movements import MovementAnnotator
from pipeline.config.columns import FRAME_COLUMNS

MAX_SERIES = 20
"""Most curves a panel draws (those with the largest values), each in a colour of its own
(:data:`PALETTE`): more make neither a readable plot nor a legend that fits."""

PALETTE = [*matplotlib.colormaps["tab20"].colors[0::2], *matplotlib.colormaps["tab20"].colors[1::2]]
"""20 distinct colours: tab20's ten strong ones first, then their light pairs."""


def _largest(rows: list[dict[str, str]], columns: list[str]) -> tuple[list[str], int]:
    """The ``MAX_SERIES`` columns with the largest values among those that counted something, in their
    order in the CSV; and how many counted something."""
    peaks = {column: max(int(row[column]) for row in rows) for column in columns}
    counted = [column for column in columns if peaks[column] > 0]
    kept = set(sorted(counted, key=lambda column: -peaks[column])[:MAX_SERIES])
    return [column for column in counted if column in kept], len(counted)


def counts_figure(rows: list[dict[str, str]], levels: Collection[str] = ()) -> Figure | None:
    """Cumulative line counts per direction, movements and pedestrians per crosswalk, and the
    ``levels`` (objects per zone, parking bays: the run's
    :attr:`~pipeline.analytics.Analytics.level_columns`, not told from the names, which are the user's)
    against time: only the series that counted something, each in its own colour, the
    legend beside the axes (in columns when long). A panel with more than ``MAX_SERIES`` such series
    draws the largest and says how many there are; with nothing counted at all, an empty panel that
    says so. None without rows or columns."""
    if not rows:
        return None
    columns = [c for c in rows[0] if c not in FRAME_COLUMNS]
    level_columns = [c for c in columns if c in levels]
    line_columns = [c for c in columns if c not in level_columns]
    panels = [
        (title, *_largest(rows, cols))
        for title, cols in (("cumulative crossings", line_columns), ("objects", level_columns))
        if cols
    ]
    if not panels:
        return None
    time_s = np.array([float(row["timestamp_s"]) for row in rows])
    drawn = [(title, shown, counted) for title, shown, counted in panels if shown]
    if not drawn:  # columns, but nothing counted in them: say so
        figure = Figure(figsize=(11, 3.4), layout="constrained")
        axes = figure.add_subplot()
        axes.set_xlim(time_s[0], max(time_s[-1], time_s[0] + 1))
        axes.set_title("nothing counted")
        axes.set_xlabel("video time (s)")
        return figure
    panels = drawn
    figure = Figure(figsize=(11, 3.4 * len(panels)), layout="constrained")
    for index, (title, shown, counted) in enumerate(panels):
        axes = figure.add_subplot(len(panels), 1, index + 1)
        for colour, column in zip(PALETTE, shown, strict=False):
            axes.step(time_s, [int(row[column]) for row in rows], where="post", label=column, color=colour)
        axes.set_title(title if len(shown) == counted else f"{title}: the {len(shown)} largest of {counted}")
        axes.set_xlabel("video time (s)")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", ncols=1 + len(shown) // 11)
    return figure


def write_counts_plot(counts_csv: str | Path, path: str | Path, levels: Collection[str] = ()) -> bool:
    """Write :func:`counts_figure` of ``counts_csv`` (its ``levels`` columns) to ``path``.

    Returns:
        False (and writes nothing) when the CSV has no rows or no count columns.
    """
    with Path(counts_csv).open(newline="", encoding="utf-8") as file:
        figure = counts_figure(list(csv.DictReader(file)), levels)
    if figure is None:
        return False
    figure.savefig(str(path), dpi=100)
    return True


def write_heatmap(heatmap: Heatmap, background: np.ndarray, path: str | Path) -> None:
    """Overlay the anchors' density (log-scaled, smoothed, colour-mapped) on ``background``."""
    density = np.log1p(heatmap.counts.astype(np.float32))
    if density.max() > 0:
        density /= density.max()
    density = cv2.resize(density, (heatmap.width, heatmap.height), interpolation=cv2.INTER_LINEAR)
    density = cv2.GaussianBlur(density, (0, 0), sigmaX=heatmap.cell)
    if density.max() > 0:
        density /= density.max()
    colored = cv2.applyColorMap((density * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (np.clip(density * 1.5, 0, 1) * 0.65)[..., None]
    image = (background.astype(np.float32) * (1 - alpha) + colored.astype(np.float32) * alpha).astype(np.uint8)
    cv2.imwrite(str(path), image)


def write_movements_map(view: MovementsView, background: np.ndarray, path: str | Path) -> None:
    """The origin-destination overlay with the run's final counts on ``background``."""
    cv2.imwrite(str(path), MovementAnnotator(text_scale=0.6).annotate(background.copy(), view))


def write_plots(
    counts_csv: Path,
    heatmap: Heatmap,
    background: np.ndarray | None,
    out_dir: Path,
    movements: MovementsView | None = None,
    levels: Collection[str] = (),
) -> None:
    """The plots of a run folder: ``counts.png`` (``levels``: its columns that are levels), and on
    ``background`` (its first frame) ``heatmap.png`` and, with movements, ``movements.png``."""
    write_counts_plot(counts_csv, out_dir / "counts.png", levels)
    if background is not None:
        write_heatmap(heatmap, background, out_dir / "heatmap.png")
        if movements is not None:
            write_movements_map(movements, background, out_dir / "movements.png")
