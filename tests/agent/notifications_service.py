# ruff: noqa: F722, F821
"""A test notification server: owns ``org.freedesktop.Notifications`` on the session bus
and records every call as a JSON line in ``--out``.

Run as a separate process (tests/agent/desktop.py starts it). It prints ``ready`` once
it owns the name. Sending ``SIGUSR1`` emits ``ActionInvoked(last id, "default")``, the
signal a click on the toast sends.
"""

# No ``from __future__ import annotations``: dbus-fast reads the signature strings from
# the annotations themselves.

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from dbus_fast import RequestNameReply
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method
from dbus_fast.service import signal as dbus_signal

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Notifications(ServiceInterface):
    def __init__(self, out: Path) -> None:
        super().__init__(NAME)
        self.out = out
        self.last_id = 0

    def _record(self, **fields: object) -> None:
        with self.out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields, ensure_ascii=False) + "\n")

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s",
               body: "s", actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":
        self.last_id += 1
        self._record(method="Notify", id=self.last_id, app_name=app_name, summary=summary,
                     body=body, actions=list(actions), app_icon=app_icon)
        return self.last_id

    @method()
    def CloseNotification(self, id: "u"):
        self._record(method="CloseNotification", id=id)
        self.NotificationClosed(id, 3)

    @method()
    def GetCapabilities(self) -> "as":
        return ["body", "actions"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["pdh-test", "pdh", "1.0", "1.2"]

    @dbus_signal()
    def NotificationClosed(self, id: "u", reason: "u") -> "uu":
        return [id, reason]

    @dbus_signal()
    def ActionInvoked(self, id: "u", action_key: "s") -> "us":
        return [id, action_key]


async def main(out: Path) -> None:
    bus = await MessageBus().connect()
    service = Notifications(out)
    bus.export(PATH, service)
    reply = await bus.request_name(NAME)
    if reply is not RequestNameReply.PRIMARY_OWNER:
        print(f"could not own {NAME}: {reply}", file=sys.stderr)
        sys.exit(1)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1,
                            lambda: service.ActionInvoked(service.last_id, "default"))
    print("ready", flush=True)
    await stop.wait()
    bus.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    asyncio.run(main(parser.parse_args().out))
