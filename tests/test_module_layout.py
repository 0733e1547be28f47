"""The package's layout rules (docs/DESIGN.md §2, §3): imports point one way, stage configs live in
their subpackage's config.py, command modules are named `<name>_command.py`."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from slmscale.cli import COMMANDS

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "slmscale"


def _module_name(path: Path) -> str:
    parts = ("slmscale", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module or function level."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        # A module's own package (its __init__) is imported with it, not by it.
        graph[name] = {m for m in imported & set(modules) if m != name and not name.startswith(m + ".")}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    cycles = []
    for start in graph:  # depth-first search for a path from each module back to itself
        stack, seen = [(start, (start,))], set()
        while stack:
            module, path = stack.pop()
            for nxt in graph[module]:
                if nxt == start:
                    cycles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


def test_stage_configs_live_in_their_subpackages_config_module():
    """Every stage config (and config group) is defined in a `config.py`; ModelShape is a model's
    shape, built from the size presets, not a config a user writes."""
    from test_config import _all_config_classes

    from slmscale.report.config import ReportConfig
    from slmscale.units.config import TokenizeConfig
    misplaced = [f"{cls.__module__}.{cls.__name__}" for cls in [*_all_config_classes(), ReportConfig, TokenizeConfig]
                 if cls.__name__ != "ModelShape" and not cls.__module__.endswith(".config")]
    assert not misplaced, misplaced


def test_command_modules_are_named_name_command():
    for name, module, _ in COMMANDS:
        assert module.rsplit(".", 1)[1].endswith("_command"), (name, module)
        importlib.import_module(module)
    commands = {module for _, module, _ in COMMANDS}
    stray = [_module_name(p) for p in PACKAGE.rglob("*command*.py") if _module_name(p) not in commands]
    assert not stray, stray
