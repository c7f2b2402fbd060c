"""The column names a config's lines, zones, approaches and crosswalks get in ``counts.csv`` and in the
TMC table (docs/outputs.md, docs/traffic.md), in one place.

Example:
    >>> line_columns("main"), zone_column("yard"), movement_name("West", None)
    (('main_in', 'main_out'), 'yard_count', 'West->?')
    >>> crosswalk_columns("N", is_line=True), crosswalk_columns("N_in", is_line=False)
    (('ped_N_in', 'ped_N_out'), ('ped_N_in',))
    >>> tmc_columns(["N"], ["cars"], ["zebra"])[:2], tmc_columns(["N"], ["cars"], ["zebra"])[-3:]
    (['N_left_cars', 'N_through_cars'], ['N_unassigned', 'ped_zebra', 'total_vehicles'])
"""

from __future__ import annotations

from collections.abc import Sequence

FRAME_COLUMNS = ("frame_index", "timestamp_s", "tracks_active")
"""The first columns of ``counts.csv``, whatever the config."""
PARKING_COLUMNS = ("slots_occupied", "slots_free")
"""The parking columns of ``counts.csv`` (with parking slots)."""
UNKNOWN = "?"
"""The destination's name in a movement that reached no exit (``West->?``)."""
TURNS = ("left", "through", "right", "u_turn")
"""The turns, in the order a TMC lists them."""
UNASSIGNED = "unassigned"
"""The TMC column of an approach's movements that reached no exit (``A->?``): no turn to put them under."""
TOTAL_VEHICLES = "total_vehicles"
OTHER = "other"
"""The class group of a class that no configured group lists (a vehicle)."""


def line_columns(name: str) -> tuple[str, str]:
    """A line's cumulative ``in`` and ``out`` columns."""
    return f"{name}_in", f"{name}_out"


def zone_column(name: str) -> str:
    """A zone's column: the objects in it on each frame."""
    return f"{name}_count"


def movement_name(origin: str | None, destination: str | None) -> str:
    """``origin->destination`` with ``?`` for no destination: a movement's name and its column."""
    return f"{origin or UNKNOWN}->{destination or UNKNOWN}"


def crosswalk_columns(name: str, is_line: bool) -> tuple[str, ...]:
    """A crosswalk's pedestrian columns: ``in`` and ``out`` across a line, one for a polygon."""
    return (f"ped_{name}_in", f"ped_{name}_out") if is_line else (f"ped_{name}",)


def tmc_movement_column(approach: str, turn: str, group: str) -> str:
    """The TMC column of an approach's movements of one turn and class group (``North_left_cars``);
    turn :data:`UNASSIGNED` gives the approach's column of movements that reached no exit."""
    return f"{approach}_{turn}" if turn == UNASSIGNED else f"{approach}_{turn}_{group}"


def tmc_columns(approaches: Sequence[str], groups: Sequence[str], crosswalks: Sequence[str]) -> list[str]:
    """Every column of the TMC table after ``camera, interval_start, interval_end``."""
    columns = [tmc_movement_column(a, turn, group) for a in approaches for turn in TURNS for group in groups]
    columns += [tmc_movement_column(a, UNASSIGNED, "") for a in approaches]
    return [*columns, *(crosswalk_columns(name, is_line=False)[0] for name in crosswalks), TOTAL_VEHICLES]
