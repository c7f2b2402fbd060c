"""The run's plots as matplotlib and drawing objects, not pixels: ``counts.png`` draws only the series
that counted something, each in a colour of its own, with a legend inside the picture; the labels of
``movements.png`` never overlap (an approach's name, its U-turn count, the arrows' counts)."""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.colors import to_rgba

from pipeline.analytics.views import CrosswalkView, MovementsView
from pipeline.annotators.movements import MovementAnnotator
from pipeline.io.outputs.plots import MAX_SERIES, counts_figure

LEGS = ["N", "E", "S", "W"]


def _rows(columns: dict[str, int], frames: int = 30) -> list[dict[str, str]]:
    """counts.csv rows whose cumulative columns grow steadily to their final value."""
    return [
        {"frame_index": str(i), "timestamp_s": str(i / 10), "tracks_active": "1"}
        | {name: str(final * i // (frames - 1)) for name, final in columns.items()}
        for i in range(frames)
    ]


def test_counts_plot_draws_the_series_that_counted_each_in_its_own_colour_with_a_legend_that_fits():
    movements = {f"{o}->{d}": 1 + i for i, (o, d) in enumerate(itertools.product(LEGS, LEGS))}  # 16 movements
    movements.update({"W->W": 0, "N->N": 0})  # two U-turns that never happened
    lines = {"main_in": 7, "main_out": 3, "side_in": 2, "side_out": 0}
    figure = counts_figure(_rows({**lines, **movements}))
    assert figure is not None
    axes = figure.axes[0]
    drawn = [line.get_label() for line in axes.get_lines()]
    counted = [name for name, final in {**lines, **movements}.items() if final > 0]
    assert sorted(drawn) == sorted(counted) and len(drawn) == 17 <= MAX_SERIES
    colours = [to_rgba(line.get_color()) for line in axes.get_lines()]
    assert len(set(colours)) == len(colours)
    figure.draw_without_rendering()
    legend = axes.get_legend().get_window_extent()
    page = figure.bbox
    assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and page.y0 <= legend.y0 and legend.y1 <= page.y1
    assert not legend.overlaps(axes.get_window_extent())  # beside the curves, not over them


def test_counts_plot_with_nothing_counted_says_so():
    figure = counts_figure(_rows({"main_in": 0, "main_out": 0}))
    assert figure is not None and figure.axes[0].get_title() == "nothing counted"
    assert figure.axes[0].get_lines() == []


def test_movement_labels_never_overlap():
    """Gates as approaches (an outline of two points): each name sits 12 px below the gate's top and a
    U-turn's label 16 px below its centre, on the same spot; four legs with every movement counted."""
    gates = {
        "N": np.array([[180.0, 40.0], [220.0, 40.0]]),
        "E": np.array([[360.0, 180.0], [360.0, 220.0]]),
        "S": np.array([[220.0, 360.0], [180.0, 360.0]]),
        "W": np.array([[40.0, 220.0], [40.0, 180.0]]),
    }
    counts = {(o, d): 10 + i for i, (o, d) in enumerate(itertools.product(LEGS, LEGS))}
    annotator = MovementAnnotator(text_scale=0.6)
    annotator.annotate(np.zeros((400, 400, 3), np.uint8), MovementsView(gates, counts))
    boxes = annotator.label_boxes
    assert len(boxes) == 4 + 16 and {"N", "N->N 10"} <= {text for *_, text in boxes}
    for a, b in itertools.combinations(boxes, 2):
        apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert apart, (a, b)


def test_a_gate_is_drawn_with_an_arrow_to_its_in_side():
    """A gate drawn left to right has the intersection below it (its right, on the image): the arrow
    from its middle points down, and nothing is drawn above it."""
    gate = np.array([[100.0, 200.0], [300.0, 200.0]])
    other = np.array([[100.0, 380.0], [120.0, 380.0], [120.0, 399.0], [100.0, 399.0]])
    view = MovementsView({"N": gate, "S": other}, {}, gates={"N": gate})
    annotator = MovementAnnotator()
    scene = annotator.annotate(np.zeros((400, 400, 3), np.uint8), view)
    assert scene[200, 150].any() and scene[200, 250].any()  # the gate itself
    name = next(box for box in annotator.label_boxes if box[4] == "N")
    assert name[3] < 200  # its name on the side vehicles come from
    assert scene[212, 200].any() and not scene[name[3] + 2 : 196, 190:211].any()  # the arrow, on the in side only


def test_a_crosswalk_is_drawn_with_its_name_and_count_and_its_label_clear_of_the_others():
    """A crosswalk polygon and a crosswalk line on a black frame, and an approach whose name falls where
    the polygon's label does: the outlines in white where they are and nowhere else, every label apart."""
    zebra = np.array([[100.0, 300.0], [300.0, 300.0], [300.0, 340.0], [100.0, 340.0]])
    kerb = np.array([[350.0, 50.0], [350.0, 150.0]])
    walks = (CrosswalkView("zebra", zebra, False, 2), CrosswalkView("kerb", kerb, True, 0))
    approach = np.array([[150.0, 308.0], [250.0, 308.0], [250.0, 390.0], [150.0, 390.0]])  # its name at y=320
    annotator = MovementAnnotator()
    scene = annotator.annotate(np.zeros((400, 400, 3), np.uint8), MovementsView({"S": approach}, {}, crosswalks=walks))
    white = (scene >= 200).all(axis=2)
    assert white[300, 110] and white[340, 290] and white[320, 100] and white[320, 300]  # the polygon's sides
    assert white[60, 350] and white[140, 350]  # the line
    assert not scene[270, 110].any() and not scene[60, 330].any()  # beside them: nothing
    texts = [box[4] for box in annotator.label_boxes]
    assert texts == ["S", "zebra 2", "kerb 0"]
    for a, b in itertools.combinations(annotator.label_boxes, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    kerb_label = annotator.label_boxes[2]
    assert kerb_label[0] < 350 < kerb_label[2] and kerb_label[1] < 100 < kerb_label[3]  # at the line's middle


def test_counts_plot_puts_crosswalks_with_the_cumulative_counts_and_zones_with_the_levels():
    columns = {"main_in": 4, "main_out": 0, "N->S": 2, "ped_zebra": 3, "ped_kerb_in": 0, "ped_kerb_out": 2}
    levels = ["yard_count", "slots_occupied", "slots_free"]
    figure = counts_figure(_rows({**columns, "yard_count": 1, "slots_occupied": 2, "slots_free": 0}), levels)
    assert figure is not None and len(figure.axes) == 2
    cumulative, levels = ([line.get_label() for line in axes.get_lines()] for axes in figure.axes)
    assert cumulative == ["main_in", "N->S", "ped_zebra", "ped_kerb_out"]  # what counted something, in CSV order
    assert levels == ["yard_count", "slots_occupied"]
