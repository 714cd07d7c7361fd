"""Dependencies point one way: agent -> core <- api, dashboard; the engine (core outside
core/erp) never imports the ERP-side tools. agent/ is in folders by role, each saying in
its ``__init__`` what it is for, with one naming scheme for the commands."""

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


# agent/, a folder per role (the README's layout paragraph says the same).
AGENT_LAYOUT = {
    "agent": {"__init__", "__main__", "autostart", "hub_app", "instance", "launch",
              "stopping"},
    "agent/cli": {"__init__", "__main__", "main", "support", "alerts", "api", "dashboard",
                  "erp", "run", "service", "store"},
    "agent/services": {"__init__", "api", "dashboard", "demo", "toasts"},
    "agent/tray": {"__init__", "attached", "controller", "icons", "pystray_backend",
                   "texts", "view"},
    "agent/windows": {"__init__", "service", "stop_events"},
}


def test_agent_is_in_folders_by_role() -> None:
    found: dict[str, set[str]] = {}
    for source in (ROOT / "agent").rglob("*.py"):
        found.setdefault(source.parent.relative_to(ROOT).as_posix(), set()).add(source.stem)
    assert found == AGENT_LAYOUT


def test_every_agent_package_says_what_it_is_for() -> None:
    for folder in AGENT_LAYOUT:
        doc = ast.get_docstring(ast.parse((ROOT / folder / "__init__.py").read_text("utf-8")))
        assert doc and len(doc.split()) >= 10, f"{folder}/__init__.py has no docstring"


def test_each_command_module_registers_and_handles_in_one_scheme() -> None:
    """Every command module of agent/cli adds its subcommands with ``register*`` and
    handles them with ``cmd_*``; no other module of the agent defines either."""
    problems = []
    for source in sorted((ROOT / "agent").rglob("*.py")):
        tree = ast.parse(source.read_text("utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        commands = {n for n in names if n.startswith(("register", "cmd_"))}
        where = source.relative_to(ROOT).as_posix()
        in_cli = where.startswith("agent/cli/") and source.stem not in (
            "__init__", "__main__", "main", "support")
        if in_cli and not (any(n.startswith("register") for n in commands)
                           and any(n.startswith("cmd_") for n in commands)):
            problems.append(f"{where}: no register*/cmd_* pair")
        if not in_cli and commands:
            problems.append(f"{where} defines {sorted(commands)}")
    assert problems == []


def test_only_the_hubs_clients_use_the_hub_api_client() -> None:
    """core/hubapi.py is the one client of the hub's HTTP API, for the processes that talk
    to a hub in another one; the engine never imports it, and nobody calls the hub's API
    with a bare httpx of its own outside it."""
    problems = []
    for top in ("core", "agent", "dashboard"):
        for source in sorted((ROOT / top).rglob("*.py")):
            where = source.relative_to(ROOT).as_posix()
            names = _imports(source)
            if top == "core" and "core.hubapi" in names:
                problems.append(f"{where} imports core.hubapi")
            if top != "core" and "httpx" in names:
                problems.append(f"{where} imports httpx")
    assert problems == []
