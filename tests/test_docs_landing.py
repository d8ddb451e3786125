"""docs/landing.md names every reason a person can see, and the vocabulary holds every
reason the code writes, so the page cannot drift from the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from brewline.validate.rules import FILE_REASONS, REASONS
from brewline.vocabulary import DELIVERY_REASONS

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "landing.md"
SOURCE = ROOT / "src" / "brewline"
EVERY_REASON = {*REASONS, *FILE_REASONS, *DELIVERY_REASONS}
_SQL_REASON = re.compile(r"\breason\s*=\s*'([a-z0-9_]+)'")


def reasons_written(tree: ast.AST) -> set[str]:
    """Reason codes a module writes: ``FileRejected("x", ...)``, ``reason="x"`` or
    ``reason=...pl.lit("x")...``, ``(FileState.X, "x", ...)`` verdicts, ``_fail(_, _, "x")``,
    ``return "x", message`` (a source's problem) and ``SET reason = 'x'`` in SQL."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "FileRejected" and node.args:
                found |= _strings(node.args[0])
            if name == "_fail" and len(node.args) > 2:
                found |= _strings(node.args[2])
            for keyword in node.keywords:
                if keyword.arg == "reason":
                    found |= _strings(keyword.value) | _lit_strings(keyword.value)
        elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            first = node.elts[0]
            if isinstance(first, ast.Attribute) and getattr(first.value, "id", "") == "FileState":
                found |= _strings(node.elts[1])
        elif (
            isinstance(node, ast.Return)
            and isinstance(node.value, ast.Tuple)
            and len(node.value.elts) == 2
        ):
            found |= {s for s in _strings(node.value.elts[0]) if "_" in s}
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= set(_SQL_REASON.findall(node.value))
    return found


def _strings(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def _lit_strings(node: ast.expr) -> set[str]:
    """The strings in ``pl.lit("x")`` calls anywhere inside ``node`` (not column names)."""
    return {
        s
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "lit" and call.args
        for s in _strings(call.args[0])
    }


def test_every_reason_the_code_writes_is_in_the_vocabulary() -> None:
    written: dict[str, str] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "vocabulary.py":  # the vocabulary itself: (state, meaning) pairs
            continue
        for reason in reasons_written(ast.parse(path.read_text(), str(path))):
            written.setdefault(reason, str(path.relative_to(ROOT)))
    unknown = {r: where for r, where in written.items() if r not in EVERY_REASON}
    assert unknown == {}, "add these to brewline.vocabulary.DELIVERY_REASONS and docs/landing.md"
    # And the vocabulary keeps no reason the code no longer writes (row reasons are
    # REASONS itself: the rules rank by it).
    assert sorted({*DELIVERY_REASONS, *FILE_REASONS} - set(written)) == []


def test_landing_page_lists_every_reason_in_a_table_row() -> None:
    rows = [line for line in PAGE.read_text().splitlines() if line.startswith("| `")]
    listed = {m for line in rows for m in re.findall(r"^\| `([a-z0-9_]+)`", line)}
    assert sorted(EVERY_REASON - listed) == []
    assert sorted(listed - EVERY_REASON) == [], "the page lists a reason the code has no more"


def test_readme_points_at_the_landing_page() -> None:
    assert "docs/landing.md" in (ROOT / "README.md").read_text()
