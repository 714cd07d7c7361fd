"""Draw the tray icon art: a database glyph (a cylinder with two bands).

Run from the repository root: ``.venv/bin/python icons/make_icons.py``. It writes

- ``icons/db-{16,24,32,48,64}.png``: grey-level templates (mode LA). The grey level says
  how to shade the state colour at that pixel (see :func:`agent.tray.icons.colourize`): the
  body is the colour itself, the top face a lighter tint, the outline a dark shade.
- ``icons/pdh.ico``: the Windows icon (healthy green) with every size above.

Each size is drawn on its own at 8x and scaled down, with the outline width chosen for
that size, so the 16 px icon keeps a clear outline instead of a blur.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere

from agent.tray.icons import (  # noqa: E402
    BODY_LEVEL,
    ICON_SIZES,
    OUTLINE_LEVEL,
    TOP_LEVEL,
    colourize,
)
from core.state import HubState  # noqa: E402

SCALE = 8  # supersampling factor


def draw_template(size: int) -> Image.Image:
    """The glyph at ``size`` px as an LA image (grey level + alpha)."""
    big = size * SCALE
    img = Image.new("LA", (big, big), (0, 0))
    d = ImageDraw.Draw(img)
    # Outline: 1 px at 16 and 24, then growing a little with the size.
    line = max(1.0, size / 20) * SCALE
    left, right = 0.14 * big, 0.86 * big
    top, bottom = 0.06 * big, 0.94 * big
    cap = 0.26 * big  # height of the elliptic cap
    outline = (OUTLINE_LEVEL, 255)

    # Silhouette in the outline colour, then the faces inset by the line width.
    d.ellipse((left, top, right, top + cap), fill=outline)
    d.rectangle((left, top + cap / 2, right, bottom - cap / 2), fill=outline)
    d.ellipse((left, bottom - cap, right, bottom), fill=outline)
    inset = line
    d.rectangle(
        (left + inset, top + cap / 2, right - inset, bottom - cap / 2), fill=(BODY_LEVEL, 255)
    )
    d.ellipse((left + inset, bottom - cap + inset, right - inset, bottom - inset),
              fill=(BODY_LEVEL, 255))
    # Two bands: the lower arcs of ellipses a third and two thirds down the body.
    span = (bottom - cap / 2) - (top + cap / 2)
    for k in (1, 2):
        y = top + k * span / 3
        d.arc((left, y, right, y + cap), start=0, end=180, fill=outline, width=round(line))
    # The top face, last, lighter.
    d.ellipse((left, top, right, top + cap), fill=outline)
    d.ellipse((left + inset, top + inset, right - inset, top + cap - inset), fill=(TOP_LEVEL, 255))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> int:
    templates = {size: draw_template(size) for size in ICON_SIZES}
    for size, img in templates.items():
        img.save(HERE / f"db-{size}.png", optimize=True)
    coloured = [colourize(templates[s], HubState.HEALTHY) for s in ICON_SIZES]
    largest = coloured[-1]
    largest.save(
        HERE / "pdh.ico",
        format="ICO",
        sizes=[(s, s) for s in ICON_SIZES],
        append_images=coloured[:-1],
    )
    print(f"wrote {len(templates)} templates and pdh.ico to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
