"""Windows only, imported there only (ctypes on kernel32, user32 and advapi32): the hub
as a service (:mod:`~agent.windows.service`) and the console events and window messages
that ask a process to stop (:mod:`~agent.windows.stop_events`)."""
