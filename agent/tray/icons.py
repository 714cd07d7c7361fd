"""Tray icon images: the database glyph from ``icons/`` coloured by the hub's state.

The art in ``icons/db-<size>.png`` is a grey-level template (drawn by
``icons/make_icons.py``). :func:`colourize` turns it into the state's colour
(:data:`core.words.STATE_COLOURS`): the body level is the colour itself, lighter levels
tint toward white (the top face), darker levels shade toward black (the outline).
Images are cached: one per state and size.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PIL import Image

from core.state import HubState
from core.words import STATE_COLOURS

ICON_SIZES = (16, 24, 32, 48, 64)

# Grey levels of the template (shared with icons/make_icons.py).
BODY_LEVEL = 200
TOP_LEVEL = 255
OUTLINE_LEVEL = 40

_TOP_TINT = 0.55  # how far the top face goes toward white
_DARKEST = 0.30  # the outline keeps this much of the colour


def _channel_lut(value: int) -> list[int]:
    lut = []
    for level in range(256):
        if level >= BODY_LEVEL:
            t = _TOP_TINT * (level - BODY_LEVEL) / (255 - BODY_LEVEL)
            out = value + (255 - value) * t
        else:
            out = value * (_DARKEST + (1 - _DARKEST) * level / BODY_LEVEL)
        lut.append(round(out))
    return lut


def colourize(template: Image.Image, state: HubState) -> Image.Image:
    """The template (mode LA) in the colour of ``state``, as RGBA."""
    grey, alpha = template.convert("LA").split()
    channels = [grey.point(_channel_lut(v)) for v in STATE_COLOURS[state].rgb]
    return Image.merge("RGBA", (*channels, alpha))


@lru_cache(maxsize=len(ICON_SIZES))
def template(size: int) -> Image.Image:
    """The grey-level art at ``size`` px (one of :data:`ICON_SIZES`)."""
    if size not in ICON_SIZES:
        raise ValueError(f"no icon art at {size} px; sizes: {ICON_SIZES}")
    with resources.files("icons").joinpath(f"db-{size}.png").open("rb") as fh:
        img = Image.open(fh)
        img.load()
    return img.convert("LA")


@lru_cache(maxsize=len(ICON_SIZES) * len(STATE_COLOURS))
def state_icon(state: HubState, size: int = 64) -> Image.Image:
    """The tray image for ``state``. 64 px by default: tray hosts scale it down well."""
    return colourize(template(size), state)


def icon_file(size: int = 64) -> str:
    """Path of the template PNG at ``size`` (for launchers and toasts that want a file)."""
    return str(resources.files("icons").joinpath(f"db-{size}.png"))
