"""Delivering alerts: a queue and a worker per channel, retries, and the test alert."""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from core.alerts.channels import channels_of
from core.alerts.model import Alert, AlertChannel, ChannelStatus, DeliveryError, Language
from core.config import AlertsConfig
from core.eventlog import iso, utcnow

log = logging.getLogger(__name__)

QUEUE_SIZE = 100  # alerts waiting per channel; the oldest goes when one more comes



@dataclass(slots=True)
class _Queue:
    channel: AlertChannel
    items: deque[Alert]
    status: ChannelStatus = field(default_factory=ChannelStatus)
    wakeup: anyio.Event | None = None


class Dispatcher:
    """Delivers alerts to every channel, each channel in its own task with its own
    bounded queue, so a slow or failing channel holds up neither the hub nor the others.

    :meth:`submit` never blocks; call it on the event loop's thread (it may be called
    before :meth:`run` starts: the queues keep what comes). Each alert gets ``retries``
    attempts per channel, ``retry_backoff * 2**(attempt-1)`` seconds apart.
    """

    def __init__(self, channels: Iterable[AlertChannel], *, retries: int,
                 retry_backoff: float, sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
                 queue_size: int = QUEUE_SIZE) -> None:
        if retries < 1:
            raise ValueError("retries must be 1 or more")
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._sleep = sleep
        self._queues: dict[str, _Queue] = {}
        for channel in channels:
            if channel.name in self._queues:
                raise ValueError(f"two alert channels are named {channel.name}")
            self._queues[channel.name] = _Queue(channel, deque(), ChannelStatus())
        self._queue_size = queue_size

    @property
    def channels(self) -> list[AlertChannel]:
        return [q.channel for q in self._queues.values()]

    def submit(self, alert: Alert) -> None:
        """Queue ``alert`` for every channel; drops the oldest queued one when full."""
        for queue in self._queues.values():
            if len(queue.items) >= self._queue_size:
                dropped = queue.items.popleft()
                log.warning("alert queue of %s is full (%d waiting): dropped the oldest "
                            "(%s at %s)", queue.channel.name, self._queue_size, dropped.kind,
                            iso(dropped.time))
            queue.items.append(alert)
            if queue.wakeup is not None:
                queue.wakeup.set()

    def status(self) -> dict[str, ChannelStatus]:
        """A copy of each channel's delivery status, by channel name."""
        return {name: q.status.model_copy() for name, q in self._queues.items()}

    def pending(self) -> dict[str, int]:
        """Alerts waiting per channel (not counting one being delivered)."""
        return {name: len(q.items) for name, q in self._queues.items()}

    async def run(self, *,
                  task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled (cancellation ends it promptly, mid-delivery too)."""
        async with anyio.create_task_group() as tg:
            for queue in self._queues.values():
                tg.start_soon(self._worker, queue, name=f"alerts {queue.channel.name}")
            task_status.started()
            await anyio.sleep_forever()

    async def _worker(self, queue: _Queue) -> None:
        while True:
            while not queue.items:
                queue.wakeup = anyio.Event()
                await queue.wakeup.wait()
            queue.wakeup = None
            alert = queue.items.popleft()
            await self._deliver(queue, alert)

    async def _deliver(self, queue: _Queue, alert: Alert) -> None:
        name = queue.channel.name
        for attempt in range(1, self.retries + 1):
            try:
                await queue.channel.send(alert)
            except DeliveryError as exc:
                if attempt < self.retries and exc.retryable:
                    delay = self.retry_backoff * 2 ** (attempt - 1)
                    log.warning("alert %s to %s, attempt %d of %d failed: %s; trying again "
                                "in %g s", alert.kind, name, attempt, self.retries, exc, delay)
                    await self._sleep(delay)
                    continue
                log.error("alert %s not delivered to %s after %d attempt(s): %s",
                          alert.kind, name, attempt, exc)
                queue.status.last_error = exc.reason
                queue.status.last_error_at = utcnow()
                return
            except Exception as exc:  # a bug in a channel must not end its worker
                log.exception("alert %s to %s failed unexpectedly", alert.kind, name)
                queue.status.last_error = f"internal error: {type(exc).__name__}: {exc}"
                queue.status.last_error_at = utcnow()
                return
            queue.status.last_ok = utcnow()
            log.info("alert %s%s delivered to %s", alert.kind,
                     " (recovered)" if alert.recovered else "", name)
            return


async def send_test(cfg: AlertsConfig, *, language: Language, db: str,
                    ssl_context: ssl.SSLContext | None = None,
                    host: str | None = None) -> dict[str, str | None]:
    """Send one "test" alert to every configured channel, all at once, one attempt each
    (a person is waiting for the answer). Returns ``{channel name: None if delivered,
    else the reason}`` in the channels' order."""
    alert = Alert(kind="test", recovered=False, state="", message="", db=db, time=utcnow(),
                  host=host or socket.gethostname(), language=language)
    channels = channels_of(cfg, ssl_context=ssl_context)
    results: dict[str, str | None] = {c.name: None for c in channels}

    async def one(channel: AlertChannel) -> None:
        try:
            await channel.send(alert)
        except DeliveryError as exc:
            results[channel.name] = exc.reason
        except Exception as exc:  # report it as that channel's failure, not a crash
            log.exception("test alert to %s failed unexpectedly", channel.name)
            results[channel.name] = f"internal error: {type(exc).__name__}: {exc}"

    async with anyio.create_task_group() as tg:
        for channel in channels:
            tg.start_soon(one, channel)
    return results
