"""The package stays readable: no module over 400 lines and no class over 120, so a newcomer can
read one stage without reading four files."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
MAX_FILE_LINES = 400
MAX_CLASS_LINES = 120


def _too_long(limit_file: int = MAX_FILE_LINES, limit_class: int = MAX_CLASS_LINES) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(PACKAGE.parent)
        if len(source.splitlines()) > limit_file:
            found.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > limit_class:
                    found.append(f"{name}: class {node.name} is {length} lines")
    return found


def test_no_module_over_400_lines_and_no_class_over_120():
    assert _too_long() == []


def test_the_check_sees_the_longest_module_and_class():
    # The check itself must find something when the limits are below what the package has.
    found = _too_long(limit_file=200, limit_class=60)
    assert any("lines" in entry and "class" not in entry for entry in found)
    assert any("class " in entry for entry in found)
