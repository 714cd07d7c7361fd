"""Dependencies point one way: agent -> core <- api, dashboard; the engine (core outside
core/erp) never imports the ERP-side tools."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(source: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_core_imports_no_ui_and_the_engine_no_erp_tools() -> None:
    problems = []
    for source in sorted((ROOT / "core").rglob("*.py")):
        erp_side = (ROOT / "core" / "erp") in source.parents
        for name in _imports(source):
            top = name.split(".")[0]
            if top in ("agent", "api", "dashboard"):
                problems.append(f"{source.relative_to(ROOT)} imports {name}")
            if not erp_side and (name == "core.erp" or name.startswith("core.erp.")):
                problems.append(f"{source.relative_to(ROOT)} imports {name}")
    assert problems == []


def test_every_package_is_in_the_wheel() -> None:
    """A package folder missing from ``[tool.setuptools] packages`` would be left out of
    the installed product (the editable install of the tests would not notice)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("agent", "core", "api", "dashboard")
             for init in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set()
