"""Column names of counts.csv: which columns are levels (zones, parking) is the run's to say, not the
names' (a crosswalk named ``x_count`` is a cumulative count)."""

from __future__ import annotations

from pathlib import Path

from pipeline.analytics import Analytics
from pipeline.config import load_config
from pipeline.io.live.metrics import RunMetrics
from pipeline.io.outputs.plots import counts_figure
from pipeline.io.publish.publisher import Publisher

BASE = """\
model: {{classes: [car, person]}}
zones: [{zones}]
lines: [{lines}]
movements:
  approaches:
    - {{name: {a}, polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]}}
    - {{name: B, polygon: [[300, 0], [400, 0], [400, 100], [300, 100]]}}
  crosswalks: [{crosswalks}]
"""
LINE_N = "{name: N, line: [[150, 0], [150, 100]]}"


def _config(tmp_path: Path, *, zones: str = "", lines: str = "", a: str = "A", crosswalks: str = "") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(BASE.format(zones=zones, lines=lines, a=a, crosswalks=crosswalks))
    return path


def test_a_crosswalk_named_like_a_zone_column_is_plotted_and_gauged_as_the_count_it_is(tmp_path: Path):
    """Crosswalk polygon ``x_count`` (column ``ped_x_count``) beside zone ``yard`` (``yard_count``)."""
    path = _config(
        tmp_path,
        zones="{name: yard, polygon: [[0, 200], [50, 200], [50, 250]]}",
        crosswalks="{name: x_count, polygon: [[150, 0], [200, 0], [200, 50], [150, 50]]}",
    )
    config = load_config(path)
    analytics = Analytics.for_run(config)
    assert analytics.level_columns == ["yard_count"]
    values = {"A->B": 2, "ped_x_count": 3, "yard_count": 1}
    rows = [
        {"frame_index": str(i), "timestamp_s": str(i / 10), "tracks_active": "1"}
        | {column: str(values.get(column, 0) * (i >= 5)) for column in analytics.columns}
        for i in range(10)
    ]
    figure = counts_figure(rows, analytics.level_columns)
    assert figure is not None and len(figure.axes) == 2
    cumulative, levels = ([line.get_label() for line in axes.get_lines()] for axes in figure.axes)
    assert cumulative == ["A->B", "ped_x_count"] and levels == ["yard_count"]

    metrics = RunMetrics()
    Publisher(config, "cam", tmp_path, metrics).counts({key: float(value) for key, value in rows[-1].items()}, 1.0)
    gauges = [line for line in metrics.text().decode().splitlines() if line.startswith("vpipe_zone_objects{")]
    assert gauges == ['vpipe_zone_objects{camera="cam",zone="yard"} 1.0']
