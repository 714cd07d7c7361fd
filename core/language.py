"""The UI language (Korean or English) for texts the hub shows or sends."""

from __future__ import annotations

import contextlib
import locale
import os
from collections.abc import Mapping

from core.words import Language

__all__ = ["Language", "resolve_language", "system_language"]


def system_language(env: Mapping[str, str] | None = None) -> Language:
    """Korean if the user's locale is Korean (ko_KR on Unix, Korean_Korea on Windows)."""
    env = os.environ if env is None else env
    candidates = [env.get(k, "") for k in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")]
    if not any(candidates):
        with contextlib.suppress(ValueError):  # an odd locale must not stop the tray
            candidates.append(locale.getlocale()[0] or "")
    first = next((c for c in candidates if c), "")
    return "ko" if first.lower().startswith(("ko", "korean")) else "en"


def resolve_language(setting: str, env: Mapping[str, str] | None = None) -> Language:
    """The language for ``ui.language`` (auto | ko | en)."""
    if setting == "ko":
        return "ko"
    if setting == "en":
        return "en"
    return system_language(env)
