"""The README's config reference cannot drift from the model."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from core.config import Config

README = Path(__file__).resolve().parents[1] / "README.md"


def reference_block() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    section = text.split("Reference (every key with its default", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "no TOML block in the README's config reference"
    return tomllib.loads(block.group(1))


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """Keys whose default is None (no value: TOML has no null) are shown commented out."""
    return {k: _drop_none(v) if isinstance(v, dict) else v
            for k, v in data.items() if v is not None}


def model_defaults() -> dict[str, Any]:
    data = Config().model_dump(mode="json")
    for section in ("log", "state", "store"):
        if data[section]["dir"] is None:
            data[section]["dir"] = ""  # "" in TOML means the platform default
    return _drop_none(data)


def test_readme_reference_equals_model_defaults() -> None:
    assert reference_block() == model_defaults()


def test_readme_reference_is_a_valid_config() -> None:
    Config.model_validate(reference_block())


def test_readme_has_the_two_quick_start_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text
    assert "powershell" in text.lower()
