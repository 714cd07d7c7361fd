"""The agent: the process that runs the hub on an office PC or a server, and its
command line.

- :mod:`agent.cli`: ``pdh``, one module per command family.
- :mod:`agent.launch`: what ``pdh run`` does (one hub per database; the tray, attached
  to a running headless hub, or headless).
- :mod:`agent.hub_app`: the hub built with the services it installs, and run.
- :mod:`agent.services`: those services (the API, the dashboard, the demo exporter, the
  toasts).
- :mod:`agent.tray`: the tray icon (controller, view, texts, icons, the pystray backend,
  the tray attached to a headless hub).
- :mod:`agent.windows`: Windows only (the service, the console events and window
  messages that ask a process to stop).
- :mod:`agent.stopping`: how this process is asked to stop, for every entry point.
- :mod:`agent.instance` (one hub per database) and :mod:`agent.autostart` (start at
  login), which the command line, ``pdh run``, the tray and the service share.
"""
