"""One version: the CLI's ``--version`` and the API's OpenAPI document say the same."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from agent.cli.main import build_parser
from api.app import create_app
from core.version import package_version
from tests.conftest import make_config


def test_cli_and_api_report_the_installed_version(tmp_path: Path) -> None:
    assert package_version() == version("production-data-hub")
    app = create_app(make_config(tmp_path))
    assert app.openapi()["info"]["version"] == package_version()
    parser = build_parser()
    action = next(a for a in parser._actions if "--version" in a.option_strings)
    assert action.version == f"pdh {package_version()}"  # type: ignore[attr-defined]
