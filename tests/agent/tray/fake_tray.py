"""A fake pystray backend (the one true edge of the tray): it records what the tray
shows, and on which thread, and clicks menu items the way pystray does (on its loop)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from agent.tray.view import Action, MenuEntry
from core.state import HubState
from tests.icon_colours import nearest_state


class FakeDispatcher:
    def __init__(self, icon: FakeIcon) -> None:
        self.icon = icon

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.icon.queue.put(fn)

    def close(self) -> None:
        self.icon.closed = True


class FakeIcon:
    """Attributes as on pystray.Icon; every change is recorded with its thread."""

    def __init__(self, name: str, image: Any, title: str) -> None:
        self.queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.changes: list[tuple[str, str]] = []  # (attribute, thread name)
        self._icon, self._title, self._menu = image, title, None
        self.first_image, self.first_title = image, title
        self.visible = False
        self.notes: list[tuple[str, str | None]] = []
        self.loop_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.closed = False

    def _record(self, attr: str) -> None:
        self.changes.append((attr, threading.current_thread().name))

    @property
    def icon(self) -> Any:
        return self._icon

    @icon.setter
    def icon(self, value: Any) -> None:
        self._record("icon")
        self._icon = value

    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, value: str) -> None:
        self._record("title")
        self._title = value

    @property
    def menu(self) -> Any:
        return self._menu

    @menu.setter
    def menu(self, value: Any) -> None:
        self._record("menu")
        self._menu = value

    def run(self, setup: Callable[[Any], None] | None = None) -> None:
        """pystray's contract: loop on this thread, call ``setup`` on another."""
        self.loop_thread = threading.current_thread()
        if setup is not None:
            threading.Thread(target=setup, args=(self,), name="fake-setup").start()
        while not self._stopped.is_set():
            try:
                fn = self.queue.get(timeout=0.02)
            except queue.Empty:
                continue
            fn()

    def stop(self) -> None:
        self._stopped.set()
        self.visible = False

    def notify(self, message: str, title: str | None = None) -> None:
        self.notes.append((message, title))

    # what a test looks at --------------------------------------------------------

    @property
    def state(self) -> HubState | None:
        return nearest_state(self._icon.getpixel((32, 26))[:3])

    def entries(self) -> tuple[MenuEntry, ...]:
        return self._menu[0] if self._menu else ()

    def find(self, action: Action) -> MenuEntry:
        def walk(entries: tuple[MenuEntry, ...]) -> MenuEntry | None:
            for e in entries:
                if e.action is action:
                    return e
                if (found := walk(e.children)) is not None:
                    return found
            return None

        found = walk(self.entries())
        assert found is not None, f"no menu item for {action}"
        return found

    def click(self, action: Action) -> None:
        """Click an enabled item: its callback runs on the tray loop, as in pystray."""
        item = self.find(action)
        assert item.enabled, f"{item.text} is disabled"
        on_action = self._menu[1]
        self.queue.put(lambda: on_action(action))


class FakeBackend:
    name = "fake"
    has_menu = True
    has_notify = True

    def __init__(self) -> None:
        self.icons: list[FakeIcon] = []

    def create_icon(self, name: str, image: Any, title: str) -> FakeIcon:
        icon = FakeIcon(name, image, title)
        self.icons.append(icon)
        return icon

    def make_menu(self, entries: tuple[MenuEntry, ...],
                  on_action: Callable[[Action], None]) -> Any:
        return (entries, on_action)

    def dispatcher(self, icon: FakeIcon) -> FakeDispatcher:
        return FakeDispatcher(icon)
