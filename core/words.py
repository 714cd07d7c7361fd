"""The words every UI shares (the product's name, the hub's states and their colours) and
the one shape of a translation table: key -> language -> text, called ``texts(key, lang)``.

Each UI keeps its own table (:mod:`agent.tray.texts`, :mod:`dashboard.i18n`,
:mod:`core.alerts.texts`, :mod:`core.status_text`) as a :class:`Texts` over
:data:`SHARED`, so a shared word is written once here and every table is called the same
way. A table that restates a shared key is refused when it is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Literal

from core.state import HubState

__all__ = ["LANGUAGES", "SHARED", "STATE_COLOURS", "Colour", "Language", "Texts",
           "state_label"]

Language = Literal["ko", "en"]
LANGUAGES: tuple[Language, ...] = ("ko", "en")

Table = Mapping[str, Mapping[Language, str]]


class Texts:
    """A translation table: ``texts(key, lang, **values)`` is the text ``key`` in
    ``lang`` with its ``{name}`` fields filled from ``values``; keys this table lacks
    come from ``base`` (the shared words)."""

    def __init__(self, table: Table, *, base: Texts | None = None) -> None:
        if base is not None and (restated := sorted(set(table) & set(base))):
            raise ValueError(f"keys already in the shared words: {', '.join(restated)}")
        self._table = table
        self._base = base

    def __call__(self, key: str, lang: Language, **values: object) -> str:
        entry = self._table.get(key)
        if entry is None:
            if self._base is None:
                raise KeyError(key)
            return self._base(key, lang, **values)
        text = entry[lang]
        return text.format(**values) if values else text

    def __contains__(self, key: object) -> bool:
        return key in self._table or (self._base is not None and key in self._base)

    def __iter__(self) -> Iterator[str]:
        """This table's own keys (not the base's)."""
        return iter(self._table)

    def entry(self, key: str) -> Mapping[Language, str]:
        """The texts of ``key`` in every language."""
        if key in self._table:
            return self._table[key]
        if self._base is None:
            raise KeyError(key)
        return self._base.entry(key)

    def incomplete(self) -> list[str]:
        """This table's keys missing a language, or with a field one language lacks
        (a test keeps this empty)."""
        return [key for key, texts in self._table.items()
                if any(not texts.get(lang) for lang in LANGUAGES)
                or len({_fields(texts.get(lang, "")) for lang in LANGUAGES}) > 1]


def _fields(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in Formatter().parse(text) if name)


SHARED = Texts({
    "title": {"ko": "생산 데이터 허브", "en": "Production Data Hub"},
    f"state_{HubState.HEALTHY}": {"ko": "정상", "en": "Healthy"},
    f"state_{HubState.WORKING}": {"ko": "작업 중", "en": "Working"},
    f"state_{HubState.DEGRADED}": {"ko": "주의", "en": "Degraded"},
    f"state_{HubState.ERROR}": {"ko": "오류", "en": "Error"},
    f"state_{HubState.PAUSED}": {"ko": "일시 중지", "en": "Paused"},
})


def state_label(state: HubState | str, lang: Language) -> str:
    """The name of the hub's state ``state`` for people ("Healthy", "정상"); an unknown
    state (from a newer hub) as it is."""
    key = f"state_{state}"
    return SHARED(key, lang) if key in SHARED else str(state)


@dataclass(frozen=True, slots=True)
class Colour:
    """A state's colour: ``rgb`` for the tray icon, ``name`` for a Streamlit badge."""

    rgb: tuple[int, int, int]
    name: str


STATE_COLOURS: dict[HubState, Colour] = {
    HubState.HEALTHY: Colour((46, 158, 68), "green"),
    HubState.WORKING: Colour((30, 111, 217), "blue"),
    HubState.DEGRADED: Colour((240, 160, 0), "orange"),  # amber
    HubState.ERROR: Colour((217, 48, 37), "red"),
    HubState.PAUSED: Colour((138, 143, 152), "gray"),
}
