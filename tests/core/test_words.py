"""The shared words and every translation table: both languages for every key, the same
``{fields}`` in each, one call order, and the shared words written in one place only."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import agent.tray.texts
import core.alerts.texts
import core.status_text
import dashboard.i18n
from core.state import HubState
from core.words import LANGUAGES, SHARED, STATE_COLOURS, Texts, state_label

ROOT = Path(__file__).resolve().parents[2]
HANGUL = re.compile("[\uac00-\ud7a3]")
TEXT_MODULES: tuple[ModuleType, ...] = (agent.tray.texts, core.alerts.texts,
                                        core.status_text, dashboard.i18n)


def tables() -> dict[str, Texts]:
    """Every :class:`Texts` the UI modules hold (found, not listed by hand)."""
    found = {"core.words.SHARED": SHARED}
    for module in TEXT_MODULES:
        for name, value in vars(module).items():
            if isinstance(value, Texts) and value is not SHARED:
                found.setdefault(f"{module.__name__}.{name}", value)
    return found


def test_every_ui_module_has_a_table() -> None:
    found = {name.rsplit(".", 1)[0] for name in tables()}
    assert found >= {m.__name__ for m in TEXT_MODULES}, found


@pytest.mark.parametrize("name", sorted(tables()))
def test_every_key_has_both_languages_and_the_same_fields(name: str) -> None:
    table = tables()[name]
    assert table.incomplete() == [], name
    for key in table:
        entry = table.entry(key)
        assert set(entry) == set(LANGUAGES), (name, key)
        assert HANGUL.search(entry["ko"]), (name, key)
        assert not HANGUL.search(entry["en"]), (name, key)


def test_alert_kinds_have_both_languages() -> None:
    for kind, texts in core.alerts.texts.KINDS.items():
        assert set(texts) == set(LANGUAGES), kind


def test_the_shared_words_come_through_every_table() -> None:
    for name, table in tables().items():
        for lang in LANGUAGES:
            assert table("title", lang) == SHARED("title", lang), name


def test_a_table_may_not_restate_a_shared_word() -> None:
    with pytest.raises(ValueError, match="title"):
        Texts({"title": {"ko": "다른 이름", "en": "Another name"}}, base=SHARED)


def test_a_field_missing_in_one_language_is_found() -> None:
    table = Texts({"x": {"ko": "{n}개", "en": "{count} of them"}, "y": {"ko": "", "en": "y"}})
    assert table.incomplete() == ["x", "y"]


def test_every_state_has_a_label_and_a_colour() -> None:
    for state in HubState:
        assert state in STATE_COLOURS
        assert HANGUL.search(state_label(state, "ko"))
        assert state_label(state, "en") != str(state)
    assert len({c.rgb for c in STATE_COLOURS.values()}) == len(HubState)
    assert len({c.name for c in STATE_COLOURS.values()}) == len(HubState)
    assert state_label("from_a_newer_hub", "en") == "from_a_newer_hub"


@pytest.mark.parametrize("text", [
    'Literal["ko", "en"]', '"생산 데이터 허브"', "(46, 158, 68)", '"일시 중지"', '"Degraded"',
])
def test_the_shared_words_are_written_once(text: str) -> None:
    """The language type, the title, a state's colour and names: in core/words.py only.
    (The English title also names OS registrations, the autostart entry and the Windows
    service, which must not change with a translation; so the Korean one is looked for.)"""
    places = [str(path.relative_to(ROOT))
              for package in ("agent", "api", "core", "dashboard")
              for path in sorted((ROOT / package).rglob("*.py"))
              if text in path.read_text(encoding="utf-8")]
    assert places == ["core/words.py"], places
