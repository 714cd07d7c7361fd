"""The alert's value types: an :class:`Alert`, a channel's status, a failed delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from core.words import Language

__all__ = ["Alert", "AlertChannel", "ChannelStatus", "DeliveryError", "Language",
           "WebhookFormat"]

WebhookFormat = Literal["json", "teams", "slack"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for people: a problem, or that it has cleared."""

    kind: str  # heal_failed export_rejected export_overdue db_missing db_unreadable
    #            server_gave_up test
    recovered: bool  # True: the problem has cleared (a recovery message)
    state: str  # the hub's state: healthy working degraded error paused
    message: str  # the detail for a person, in English as the hub logs it
    db: str  # database path
    time: datetime  # aware UTC
    host: str  # socket.gethostname() of the hub
    suppressed: int = 0  # alerts of this kind held back by the rate limit since the last sent
    language: Language = "en"
    suppressed_since: datetime | None = None  # when the last alert of this kind was sent


class ChannelStatus(BaseModel):
    """How delivery to one channel went; ``last_error`` stays after a later success
    (compare ``last_error_at`` with ``last_ok``)."""

    last_ok: datetime | None = None
    last_error: str | None = None  # the cause, e.g. "HTTP 500 Internal Server Error"
    last_error_at: datetime | None = None


class DeliveryError(Exception):
    """An alert that did not reach a channel. ``str()`` names the channel and the cause
    ("webhook https://x/y: HTTP 500 Internal Server Error"); ``reason`` is the cause alone.
    ``retryable`` is False when another attempt would do harm (some recipients already
    got the mail)."""

    def __init__(self, channel: str, reason: str, *, retryable: bool = True) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.retryable = retryable


class AlertChannel(Protocol):
    """Anything alerts can be sent to."""

    @property
    def name(self) -> str: ...

    async def send(self, alert: Alert) -> None: ...
