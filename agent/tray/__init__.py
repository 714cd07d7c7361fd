"""The tray icon: :mod:`~agent.tray.view` (a status snapshot in, what the icon shows
out, as plain data), :mod:`~agent.tray.controller` (applies it to an icon on the tray's
thread, turns clicks into hub commands), :mod:`~agent.tray.texts`,
:mod:`~agent.tray.icons`, :mod:`~agent.tray.pystray_backend` (the real icon), and
:mod:`~agent.tray.attached` (the same tray for a hub in another process, over its API)."""
