"""The real tray backend: pystray, and a way to run code on each backend's tray thread.

Import this module only after deciding that a display exists: importing pystray without
one fails (on X11 with ``Xlib.error.DisplayNameError``). ``PYSTRAY_BACKEND`` (pystray's
own variable) picks the backend: gtk, appindicator, xorg, win32, darwin.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import pystray

from agent.tray.controller import TrayIcon
from agent.tray.view import Action, MenuEntry

log = logging.getLogger(__name__)


def _run_update(fn: Callable[[], None]) -> None:
    """Apply one tray update; a failing one is logged and the next still runs."""
    try:
        fn()
    except Exception:
        log.exception("tray update failed")


class GLibDispatcher:
    """gtk and appindicator: the GLib main loop runs on the tray thread."""

    def __init__(self) -> None:
        from gi.repository import GLib

        self._glib = GLib

    def call_soon(self, fn: Callable[[], None]) -> None:
        def once() -> bool:
            _run_update(fn)
            return False  # do not repeat

        self._glib.idle_add(once)

    def close(self) -> None:
        pass


class ThreadDispatcher:
    """xorg (and the dummy backend): pystray already marshals each icon change onto its
    loop thread and waits for it; a worker thread keeps that wait off the caller.

    Known limit (pystray 0.19.5, python-xlib): the xorg loop now and then misses the X
    event that carries a change or the stop from another thread and sleeps on; gtk and
    appindicator (PyGObject) do not have this problem and are preferred by pystray.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="pdh-tray-apply", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (fn := self._queue.get()) is not None:
            _run_update(fn)

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2)


class Win32Dispatcher:
    """win32: a private window message, handled by pystray's message loop.
    (Written against pystray 0.19.5's ``_message_handlers``; not run on this machine.)"""

    WM_APP_CALL = 0x8000 + 0x51  # WM_APP + n

    def __init__(self, icon: Any) -> None:
        from pystray._util import win32

        self._win32 = win32
        self._icon = icon
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        icon._message_handlers[self.WM_APP_CALL] = self._drain

    def _drain(self, wparam: int = 0, lparam: int = 0) -> int:
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return 0
            _run_update(fn)

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)
        hwnd = getattr(self._icon, "_hwnd", None)
        if hwnd:  # before the loop starts, setup() drains through the first post
            self._win32.PostMessage(hwnd, self.WM_APP_CALL, 0, 0)

    def close(self) -> None:
        pass


class DarwinDispatcher:
    """macOS: AppKit's main thread. (Not run on this machine.)"""

    def call_soon(self, fn: Callable[[], None]) -> None:
        from PyObjCTools import AppHelper

        AppHelper.callAfter(fn)

    def close(self) -> None:
        pass


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


class _Latin1TitleIcon(pystray.Icon):
    """xorg writes the title as an X STRING (Latin-1) and raises on Hangul. It shows no
    tooltip anyway, so a lossy title is harmless there."""

    @property
    def title(self) -> str:
        return str(self._title)

    @title.setter
    def title(self, value: str) -> None:
        pystray.Icon.title.fset(self, _latin1(value))


_NOTHING = object()
_WM_NULL = 0x0000


class _Win32PopupSafeIcon(pystray.Icon):
    """win32: pystray's popup menu, made to behave as Windows documents for a tray icon.

    - pystray shows the menu with a modal ``TrackPopupMenuEx`` on the tray's thread, and
      our dispatcher's messages are still handled meanwhile; a new menu set then
      destroys the open one under the pointer and the click on it is lost (seen under
      Wine: "Close Tray" clicked while a status update arrived). While the popup is open
      a new menu waits, newest wins, and is set once it closes.
    - After ``TrackPopupMenuEx`` the owner window must be sent a message (WM_NULL), or
      the next popup opens and closes at once (Microsoft's KB135788, "Menus for
      notification icons do not work correctly"); pystray posts none, so a second
      right-click showed nothing unless a status update happened to post one.
    """

    _popup_open = False
    _waiting_menu: Any = _NOTHING

    def _on_notify(self, wparam: int, lparam: int) -> Any:
        from pystray._util import win32

        if lparam != win32.WM_RBUTTONUP:  # only the right button's release opens the popup
            return super()._on_notify(wparam, lparam)
        self._popup_open = True
        try:
            return super()._on_notify(wparam, lparam)
        finally:
            self._popup_open = False
            win32.PostMessage(self._hwnd, _WM_NULL, 0, 0)
            menu, self._waiting_menu = self._waiting_menu, _NOTHING
            if menu is not _NOTHING:
                pystray.Icon.menu.fset(self, menu)

    @property
    def menu(self) -> Any:
        return pystray.Icon.menu.fget(self)

    @menu.setter
    def menu(self, value: Any) -> None:
        if self._popup_open:
            self._waiting_menu = value
        else:
            pystray.Icon.menu.fset(self, value)


class PystrayBackend:
    """Icons, menus and dispatchers of the pystray backend in use."""

    def __init__(self) -> None:
        self.name = pystray.Icon.__module__.rsplit(".", 1)[-1].lstrip("_")
        self.has_menu = bool(pystray.Icon.HAS_MENU)
        self.has_notify = bool(pystray.Icon.HAS_NOTIFICATION)

    def create_icon(self, name: str, image: Any, title: str) -> TrayIcon:
        if self.name == "xorg":
            return _Latin1TitleIcon(name, image, _latin1(title))
        if self.name == "win32":
            return _Win32PopupSafeIcon(name, image, title)
        icon: TrayIcon = pystray.Icon(name, image, title)
        return icon

    def make_menu(self, entries: tuple[MenuEntry, ...],
                  on_action: Callable[[Action], None]) -> Any:
        return pystray.Menu(*(self._item(e, on_action) for e in entries))

    def _item(self, entry: MenuEntry, on_action: Callable[[Action], None]) -> Any:
        if entry.separator:
            return pystray.Menu.SEPARATOR
        if entry.children:
            submenu = pystray.Menu(*(self._item(c, on_action) for c in entry.children))
            return pystray.MenuItem(entry.text, submenu, enabled=entry.enabled)
        action = entry.action

        def clicked(icon: Any, item: Any) -> None:
            if action is not None:
                on_action(action)

        checked = entry.checked
        return pystray.MenuItem(
            entry.text,
            clicked,
            checked=None if checked is None else (lambda item: checked),
            default=entry.default,
            enabled=entry.enabled,
        )

    def dispatcher(self, icon: TrayIcon) -> Any:
        if self.name in ("gtk", "appindicator"):
            return GLibDispatcher()
        if self.name == "win32":
            return Win32Dispatcher(icon)
        if self.name == "darwin":
            return DarwinDispatcher()
        return ThreadDispatcher()
