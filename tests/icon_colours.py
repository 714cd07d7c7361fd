"""Reading the tray icon's state back from its pixels (a screenshot, a fake tray)."""

from __future__ import annotations

from core.state import HubState
from core.words import STATE_COLOURS


def nearest_state(rgb: tuple[int, int, int], *, tolerance: float = 60.0) -> HubState | None:
    """The state whose colour ``rgb`` is (within ``tolerance``), else None."""
    best: tuple[float, HubState | None] = (tolerance, None)
    for state, colour in STATE_COLOURS.items():
        dist = sum((a - b) ** 2 for a, b in zip(rgb, colour.rgb, strict=True)) ** 0.5
        if dist < best[0]:
            best = (dist, state)
    return best[1]
