"""Reading Wine's virtual desktop from screenshots: where the tray icon is, its state
colour, and the rows of the open tray menu. Nothing here uses fixed coordinates: the
icon is found by its colours in the taskbar strip, the menu rows by their text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.state import HubState
from tests.icon_colours import nearest_state

TASKBAR_PX = 20  # Wine's taskbar strip at the bottom of its virtual desktop


@dataclass(frozen=True)
class TrayIcon:
    x: int
    y: int
    state: HubState


def find_icon(shot: Path) -> TrayIcon | None:
    """The tray icon in the taskbar: the middle of its state-coloured pixels."""
    image = Image.open(shot).convert("RGB")
    width, height = image.size
    votes: Counter[HubState] = Counter()
    points: list[tuple[int, int]] = []
    for y in range(height - TASKBAR_PX, height):
        for x in range(width // 2, width):
            state = nearest_state(image.getpixel((x, y)), tolerance=40)
            if state is not None:
                votes[state] += 1
                points.append((x, y))
    if len(points) < 20:
        return None
    xs, ys = sorted(p[0] for p in points), sorted(p[1] for p in points)
    return TrayIcon(xs[len(xs) // 2], ys[len(ys) // 2], votes.most_common(1)[0][0])


def _light(pixel: tuple[int, int, int]) -> bool:
    return sum(pixel) > 600


def menu_rows(shot: Path, near_x: int) -> tuple[int, list[int]]:
    """The left edge of the popup menu open left of ``near_x`` (the icon), and the y of
    each of its item rows, top to bottom; separators (thin lines) are not rows. The menu
    is the light box above the taskbar; a row is a band of dark text in its left part (a
    tooltip may cover the right part)."""
    image = Image.open(shot).convert("RGB")
    width, height = image.size
    floor = height - TASKBAR_PX
    # The menu's left edge: the first column, left of the icon, that is mostly light
    # just above the taskbar (the desktop behind is dark blue).
    band = range(floor - 60, floor)
    left = next((x for x in range(0, min(near_x, width))
                 if sum(_light(image.getpixel((x, y))) for y in band) > 0.9 * len(band)),
                None)
    if left is None:
        return 0, []
    # Its top: the first row, going up from the taskbar, that is not light at the left.
    top = floor - 4
    while top > 0 and _light(image.getpixel((left, top - 1))):
        top -= 1
    columns = range(left + 15, min(left + 140, width))
    rows: list[int] = []
    start: int | None = None
    for y in range(top, height):
        texty = any(sum(image.getpixel((cx, y))) < 450 for cx in columns)
        if texty and start is None:
            start = y
        elif not texty and start is not None:
            if y - start > 3:  # a separator is a line of one or two pixels
                rows.append((start + y - 1) // 2)
            start = None
    return left, rows


def box_above_icon(shot: Path, near_x: int) -> bool:
    """Whether a light box (a balloon toast, a menu) sits on the desktop just above the
    taskbar, left of the icon. Wine draws a balloon's tail over the icon itself, so a
    right-click then lands on the balloon, not the icon."""
    image = Image.open(shot).convert("RGB")
    floor = image.size[1] - TASKBAR_PX
    span = range(max(0, near_x - 100), max(0, near_x - 20))
    return sum(_light(image.getpixel((x, floor - 8))) for x in span) > 0.5 * len(span)
