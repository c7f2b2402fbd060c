"""Report tables as an Excel workbook (``openpyxl``), one sheet per table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError


def write_workbook(tables: Mapping[str, tuple[Sequence[str], list[dict[str, Any]]]], output: Path) -> None:
    """Write each ``title: (columns, rows)`` of ``tables`` as a sheet of ``output`` (an ``.xlsx``).

    Raises:
        OutputError: ``output`` cannot be written.
    """
    from openpyxl import Workbook  # only reports written as XLSX need it

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, (columns, rows) in tables.items():
        sheet = workbook.create_sheet(title)
        sheet.append(list(columns))
        for row in rows:
            sheet.append([row[column] for column in columns])
    try:
        workbook.save(output)
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
