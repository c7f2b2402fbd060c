"""Run plots: ``counts.png`` (counts over time, from counts.csv) and ``heatmap.png``.

Matplotlib's object API (no pyplot), so nothing global changes and no display is needed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from pipeline.analytics.heatmap import Heatmap
from pipeline.analytics.views import MovementsView
from pipeline.annotators.movements import MovementAnnotator

MAX_SERIES = 12
"""Most curves a panel draws (those with the largest values): more make neither a readable plot nor
a legend that fits."""


def _largest(rows: list[dict[str, str]], columns: list[str]) -> list[str]:
    """The ``MAX_SERIES`` columns with the largest values, in their order in the CSV."""
    peaks = {column: max(int(row[column]) for row in rows) for column in columns}
    kept = set(sorted(columns, key=lambda column: -peaks[column])[:MAX_SERIES])
    return [column for column in columns if column in kept]


def write_counts_plot(counts_csv: str | Path, path: str | Path) -> bool:
    """Plot cumulative line counts per direction and zone/parking occupancy against time; a panel with
    more than ``MAX_SERIES`` columns draws the largest and says how many there are.

    Returns:
        False (and writes nothing) when the CSV has no rows or no count columns.
    """
    with Path(counts_csv).open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return False
    columns = [c for c in rows[0] if c not in ("frame_index", "timestamp_s", "tracks_active")]
    line_columns = [c for c in columns if c.endswith(("_in", "_out")) or "->" in c]  # crossings, movements
    level_columns = [c for c in columns if c not in line_columns]
    if not columns:
        return False
    time_s = np.array([float(row["timestamp_s"]) for row in rows])
    panels = [
        (title, cols) for title, cols in (("cumulative crossings", line_columns), ("objects", level_columns)) if cols
    ]
    figure = Figure(figsize=(9, 3.2 * len(panels)), layout="constrained")
    for index, (title, cols) in enumerate(panels):
        axes = figure.add_subplot(len(panels), 1, index + 1)
        shown = _largest(rows, cols)
        for column in shown:
            axes.step(time_s, [int(row[column]) for row in rows], where="post", label=column)
        axes.set_title(title if len(shown) == len(cols) else f"{title}: the {len(shown)} largest of {len(cols)}")
        axes.set_xlabel("video time (s)")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
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
) -> None:
    """The plots of a run folder: ``counts.png``, and on ``background`` (its first frame)
    ``heatmap.png`` and, with movements, ``movements.png``."""
    write_counts_plot(counts_csv, out_dir / "counts.png")
    if background is not None:
        write_heatmap(heatmap, background, out_dir / "heatmap.png")
        if movements is not None:
            write_movements_map(movements, background, out_dir / "movements.png")
