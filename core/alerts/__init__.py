"""Alerts for people who are not at the PC: which events need them and when
(:mod:`~core.alerts.policy`), what they say, and getting them to webhooks and email.

Which events become alerts, and when, is the policy's business; delivery takes
an :class:`Alert` it is given and delivers it to every configured channel
(:func:`channels_of`), each with its own queue, retries and status (:class:`Dispatcher`),
so a hanging mail server never holds up a Teams message, nor the hub.

The JSON webhook body (``format = "json"``), one object::

    {"event": "heal_failed",        # the alert's kind, or "test"
     "recovered": false,            # true: the problem has cleared
     "state": "error",              # the hub's state (healthy working degraded error paused;
                                    # empty for a test alert)
     "message": "...",              # the detail, in English as the hub logs it
     "db": "C:\\\\ERP\\\\production_analysis.db",
     "time": "2026-03-31T09:15:02.000Z",   # ISO-8601, UTC
     "host": "PC-01",
     "suppressed": 0,               # alerts of this kind held back since the last one sent
     "language": "ko",              # of title and text
     "title": "...", "text": "..."} # subject and body as :func:`render` makes them

``format = "teams"`` posts an Adaptive Card message (Teams Workflows "post to a channel
when a webhook request is received", and the classic incoming webhooks); ``"slack"`` a
Slack incoming-webhook message with ``text`` and ``blocks``.

Email goes through :mod:`smtplib` in a worker thread: STARTTLS when ``starttls`` is on,
TLS from the first byte when the port is 465 (SMTPS), a login when ``username`` is set.

The package, by role: :mod:`~core.alerts.policy` (which events, when; the hub's alert
service), :mod:`~core.alerts.model` (the value types),
:mod:`~core.alerts.texts` (what an alert says), :mod:`~core.alerts.channels` (webhook
and email), :mod:`~core.alerts.dispatch` (queues, retries, the test alert).
"""

from core.alerts.channels import EmailChannel, WebhookChannel, channels_of, redact_url
from core.alerts.dispatch import QUEUE_SIZE, Dispatcher, send_test
from core.alerts.model import (
    Alert,
    AlertChannel,
    ChannelStatus,
    DeliveryError,
    Language,
    WebhookFormat,
)
from core.alerts.texts import KINDS, KindText, render, webhook_payload

__all__ = [
    "Alert",
    "AlertChannel",
    "ChannelStatus",
    "DeliveryError",
    "Dispatcher",
    "EmailChannel",
    "KINDS",
    "KindText",
    "Language",
    "QUEUE_SIZE",
    "WebhookChannel",
    "WebhookFormat",
    "channels_of",
    "redact_url",
    "render",
    "send_test",
    "webhook_payload",
]
