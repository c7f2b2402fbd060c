"""The column names a config's lines, zones, approaches and crosswalks get in ``counts.csv`` and in the
TMC table (docs/outputs.md, docs/traffic.md), in one place; and the check, at config load, that no
two of them get one name.

Names are the user's, joined with fixed parts (``main`` gives ``main_in``), so two items can meet
in one column: a crosswalk line ``N`` gives ``ped_N_in``, and so does a crosswalk polygon ``N_in``.
:func:`check_column_names` refuses such a config, naming both keys.

Example:
    >>> line_columns("main"), zone_column("yard"), movement_name("West", None)
    (('main_in', 'main_out'), 'yard_count', 'West->?')
    >>> crosswalk_columns("N", is_line=True), crosswalk_columns("N_in", is_line=False)
    (('ped_N_in', 'ped_N_out'), ('ped_N_in',))
    >>> tmc_columns(["N"], ["cars"], ["zebra"])[:2], tmc_columns(["N"], ["cars"], ["zebra"])[-3:]
    (['N_left_cars', 'N_through_cars'], ['N_unassigned', 'ped_zebra', 'total_vehicles'])

What each column counts is known here too, never told from its name (a crosswalk ``x_count`` is no
zone): :func:`counts_columns` gives each analytics column of ``counts.csv`` its :class:`Column`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pipeline.config.run import Config

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
TMC_HEAD = ("camera", "interval_start", "interval_end", "watched_s", "partial")
"""The first columns of the TMC table: the camera, the bin, how long the runs watched it (s) and whether
that was only part of it (the bin is then no part of the peak hour)."""
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


ColumnKind = Literal["line", "zone", "movement", "crosswalk", "parking"]


@dataclass(frozen=True)
class Column:
    """What one analytics column of ``counts.csv`` counts.

    Attributes:
        kind: The kind of item.
        name: The item's name (the line's, zone's, movement's, crosswalk's; ``slots`` for parking).
        part: Which of the item's columns: ``in``/``out`` of a line or crosswalk line, ``occupied``/``free``
            for parking, ``""`` for an item's only column.
    """

    kind: ColumnKind
    name: str
    part: str = ""


def counts_columns(
    lines: Sequence[str],
    zones: Sequence[str],
    movements: Sequence[str],
    crosswalks: Sequence[tuple[str, bool]],
    parking: bool,
) -> dict[str, Column]:
    """The analytics columns of ``counts.csv``, in order, and what each counts: per line its ``in`` and
    ``out``, per zone, per movement (``origin->destination``), per crosswalk (name, whether a line) its
    one or two columns, then the parking bays.

    Example:
        >>> counts_columns(["x_count"], ["yard"], [], [("x_count", False)], False)  # doctest: +NORMALIZE_WHITESPACE
        {'x_count_in': Column(kind='line', name='x_count', part='in'),
         'x_count_out': Column(kind='line', name='x_count', part='out'),
         'yard_count': Column(kind='zone', name='yard', part=''),
         'ped_x_count': Column(kind='crosswalk', name='x_count', part='')}
    """
    columns = {
        column: Column("line", name, part)
        for name in lines
        for column, part in zip(line_columns(name), ("in", "out"), strict=True)
    }
    columns.update({zone_column(name): Column("zone", name) for name in zones})
    columns.update({name: Column("movement", name) for name in movements})
    for name, is_line in crosswalks:
        parts = ("in", "out") if is_line else ("",)
        for column, part in zip(crosswalk_columns(name, is_line), parts, strict=True):
            columns[column] = Column("crosswalk", name, part)
    if parking:
        columns.update(
            {column: Column("parking", "slots", column.removeprefix("slots_")) for column in PARKING_COLUMNS}
        )
    return columns


def tmc_movement_column(approach: str, turn: str, group: str) -> str:
    """The TMC column of an approach's movements of one turn and class group (``North_left_cars``);
    turn :data:`UNASSIGNED` gives the approach's column of movements that reached no exit."""
    return f"{approach}_{turn}" if turn == UNASSIGNED else f"{approach}_{turn}_{group}"


def tmc_columns(approaches: Sequence[str], groups: Sequence[str], crosswalks: Sequence[str]) -> list[str]:
    """Every column of the TMC table after :data:`TMC_HEAD`."""
    columns = [tmc_movement_column(a, turn, group) for a in approaches for turn in TURNS for group in groups]
    columns += [tmc_movement_column(a, UNASSIGNED, "") for a in approaches]
    return [*columns, *(crosswalk_columns(name, is_line=False)[0] for name in crosswalks), TOTAL_VEHICLES]


def tmc_groups(config: Config) -> list[str]:
    """The class groups a TMC of ``config``'s runs has columns for: those that make movements (every
    kind but pedestrians) and :data:`OTHER`."""
    named = [group.name for group in config.class_groups if group.kind != "pedestrian"]
    return [*named, *([OTHER] if OTHER not in named else [])]


def check_column_names(config: Config) -> None:
    """Refuse a config two of whose items would write one column of ``counts.csv`` or of the TMC table.

    Raises:
        ConfigError: Naming the later item's key and name, the column and the earlier item.
    """
    for table, owned in (("counts.csv", _counts_owners(config)), ("TMC", _tmc_owners(config))):
        seen: dict[str, tuple[str, str]] = {}
        for column, (key, name) in owned:
            earlier_key, earlier_name = seen.setdefault(column, (key, name))
            if earlier_key != key:
                earlier = f"{earlier_key} ({earlier_name})" if earlier_key else "a column of vpipe's own"
                raise config.error(
                    key, f"{name!r} gives the {table} column {column!r}, as {earlier} does; rename one of them"
                )


_Owned = Iterator[tuple[str, tuple[str, str]]]
"""(column, (key, name)) pairs: the item's config key and name; key "" for vpipe's own columns."""


def _counts_owners(config: Config) -> _Owned:
    yield from ((column, ("", "")) for column in (*FRAME_COLUMNS, *PARKING_COLUMNS))
    for index, line in enumerate(config.lines):
        yield from ((column, (f"lines[{index}].name", line.name)) for column in line_columns(line.name))
    for index, zone in enumerate(config.zones):
        yield zone_column(zone.name), (f"zones[{index}].name", zone.name)
    approaches = config.movements.approaches
    for index, origin in enumerate(approaches):
        for destination in approaches:
            yield movement_name(origin.name, destination.name), (f"movements.approaches[{index}].name", origin.name)
    for index, walk in enumerate(config.movements.crosswalks):
        owner = (f"movements.crosswalks[{index}].name", walk.name)
        yield from ((column, owner) for column in crosswalk_columns(walk.name, walk.polygon is None))


def _tmc_owners(config: Config) -> _Owned:
    groups = tmc_groups(config)
    yield from ((column, ("", "")) for column in (*TMC_HEAD, TOTAL_VEHICLES))
    for index, approach in enumerate(config.movements.approaches):
        owner = (f"movements.approaches[{index}].name", approach.name)
        yield from ((column, owner) for column in tmc_columns([approach.name], groups, [])[:-1])
    for index, walk in enumerate(config.movements.crosswalks):
        owner = (f"movements.crosswalks[{index}].name", walk.name)
        yield crosswalk_columns(walk.name, is_line=False)[0], owner
