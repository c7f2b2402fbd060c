"""What the ``--serve`` page's charts and its read-only JSON API answer from the run's store, through
the queries ``vpipe report`` runs (:mod:`pipeline.store.queries`): nothing here writes.

- ``/api/counts?camera=&from=&to=&interval=`` and ``/api/parking?...``: the rows ``vpipe report
  --format json`` (``--parking``) gives for the same span;
- ``/chart.svg?source=NAME&hours=H&interval=I``: the source's camera's counts and parking over the
  last ``H`` hours it has stored, in bins of ``I``, as SVG (:mod:`pipeline.io.live.charts`).

Parameters that cannot be read are a :class:`QueryError` (the server answers 400 with its message).
"""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from pipeline.errors import PipelineError
from pipeline.io.live.charts import chart_svg
from pipeline.store.cli import interval_arg, time_arg
from pipeline.store.queries import Span, counts, open_for_reading, parking

MAX_BINS = 10_000
"""Most bins one API request may ask for (15-minute bins over 100 days); more is refused, not computed."""

CHART_MAX_BINS = 200
"""Most bins in one chart."""

DEFAULT_HOURS = 6.0
DEFAULT_INTERVAL = "15m"


class QueryError(ValueError):
    """A request's parameters cannot be read; the message says which and why."""


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise QueryError(f"{name} given {len(values)} times")
    return values[0] if values else None


def _parsed(query: Mapping[str, list[str]], name: str, parse: Callable[[str], Any], default: str | None) -> Any:
    text = _one(query, name)
    if text is None and default is None:
        return None
    try:
        return parse(default if text is None else text)
    except argparse.ArgumentTypeError as exc:
        raise QueryError(f"{name}: {exc}") from None


def parse_query(text: str, allowed: set[str]) -> dict[str, list[str]]:
    """A URL query's parameters, refusing any not in ``allowed``.

    Example:
        >>> parse_query("camera=a&camera=b&interval=1h", {"camera", "interval"})
        {'camera': ['a', 'b'], 'interval': ['1h']}
    """
    try:
        query = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=50)
    except ValueError as exc:
        raise QueryError(f"cannot read the query: {exc}") from None
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return query


def api_span(text: str) -> Span:
    """The span of an ``/api/...`` request: ``camera`` (repeatable; default all), ``from`` and ``to``
    (ISO 8601, UTC unless they carry an offset; default everything stored), ``interval`` (default 15m).

    Example:
        >>> api_span("camera=gate&from=2024-05-07&to=2024-05-08&interval=1h")
        Span(start_ms=1715040000000, end_ms=1715126400000, interval_ms=3600000, cameras=('gate',))
    """
    query = parse_query(text, {"camera", "from", "to", "interval"})
    start, end = _parsed(query, "from", time_arg, None), _parsed(query, "to", time_arg, None)
    interval_ms = _parsed(query, "interval", interval_arg, DEFAULT_INTERVAL)
    if start is not None and end is not None and start >= end:
        raise QueryError("from must be before to")
    return Span(start, end, interval_ms, tuple(query.get("camera", ())))


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of hours such as 6, got {text!r}") from None
    if not (math.isfinite(hours) and hours > 0):
        raise argparse.ArgumentTypeError(f"expected a number of hours above 0, got {text!r}")
    return hours


class Dashboard:
    """This process's cameras in its store, as the ``--serve`` page's charts and API read them.

    The runs add their cameras as they start (:meth:`add`); with no store (``--store none``) the API
    and charts say so.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: str | None = None
        self._cameras: dict[str, str] = {}  # the live view's source name -> the store's camera name

    def add(self, source: str, camera: str, store: str | None) -> None:
        """``source`` (as the live view names it) is ``camera`` in ``store`` (None: not stored)."""
        with self._lock:
            self._cameras[source] = camera
            if store is not None:
                self._store = store

    def api(self, kind: str, query: str) -> tuple[HTTPStatus, Any]:
        """The ``/api/counts`` or ``/api/parking`` answer: the status and the JSON document."""
        try:
            span = api_span(query)
        except QueryError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}

        def rows(db: Any) -> list[dict[str, Any]]:
            start, end = span.bounds(db)
            if (end - start) / span.interval_ms > MAX_BINS:
                raise QueryError(
                    f"more than {MAX_BINS} bins of {span.interval_ms // 1000} s: a shorter from..to or longer bins"
                )
            return (parking if kind == "parking" else counts)(db, span)

        return self._read(rows)

    def chart(self, query: str) -> tuple[HTTPStatus, Any]:
        """The ``/chart.svg`` answer: the status, and the SVG text (a JSON document on an error)."""
        try:
            params = parse_query(query, {"source", "hours", "interval"})
            source = _one(params, "source")
            hours = _parsed(params, "hours", _hours, str(DEFAULT_HOURS))
            interval_ms = _parsed(params, "interval", interval_arg, DEFAULT_INTERVAL)
            if hours * 3_600_000 / interval_ms > CHART_MAX_BINS:
                raise QueryError(
                    f"hours/interval gives more than {CHART_MAX_BINS} bins: ask for fewer hours or longer bins"
                )
        except QueryError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        with self._lock:
            camera = self._cameras.get(source or "")
        if camera is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no source {source!r}"}

        def draw(db: Any) -> str:
            first, end = Span(None, None, interval_ms, (camera,)).bounds(db)  # up to its latest stored frame
            start = max(first, end - round(hours * 3_600_000)) // interval_ms * interval_ms  # whole bins
            span = Span(start, end, interval_ms, (camera,))
            return chart_svg(counts(db, span), parking(db, span), interval_ms)

        return self._read(draw)

    def _read(self, query: Callable[[Any], Any]) -> tuple[HTTPStatus, Any]:
        with self._lock:
            store = self._store
        if store is None:
            return HTTPStatus.NOT_FOUND, {"error": "this run keeps no store (--store none): no history to show"}
        try:
            db = open_for_reading(store)
        except PipelineError as exc:  # not there yet (before the first run starts) or unreadable
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)}
        try:
            return HTTPStatus.OK, query(db)
        except QueryError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        finally:
            db.close()
