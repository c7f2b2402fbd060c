"""The package stays readable: no module over 400 lines, so a newcomer can read one stage without
reading four files. A smell detector, not a target: a module over it is split where its concerns
part, never folded to pass. Functions that branch or run on too long are ruff's to find (C901,
PLR0912 and PLR0915 in pyproject.toml, run by ``make lint``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
MAX_FILE_LINES = 400


def _too_long(limit: int = MAX_FILE_LINES) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines")
    return found


def test_no_module_over_400_lines():
    assert _too_long() == []


def test_the_check_sees_the_longest_module():
    # The check itself must find something when the limit is below what the package has.
    assert any(entry.startswith("pipeline/") for entry in _too_long(limit=200))
