"""Alert delivery: the texts of an alert, and getting them to webhooks and email.

Which events become alerts, and when, is the alert policy's business; this module takes
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
"""

from __future__ import annotations

import email.policy
import functools
import json
import logging
import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx
from pydantic import BaseModel

from core.config import AlertsConfig, EmailConfig, WebhookConfig
from core.eventlog import iso, utcnow
from core.messages import localize

log = logging.getLogger(__name__)

__all__ = [
    "Alert",
    "AlertChannel",
    "ChannelStatus",
    "DeliveryError",
    "Dispatcher",
    "EmailChannel",
    "KINDS",
    "WebhookChannel",
    "channels_of",
    "redact_url",
    "render",
    "send_test",
    "webhook_payload",
]

Language = Literal["ko", "en"]
WebhookFormat = Literal["json", "teams", "slack"]

QUEUE_SIZE = 100  # alerts waiting per channel; the oldest goes when one more comes


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


# Texts ----------------------------------------------------------------------------------

APP = {"ko": "생산 데이터 허브", "en": "Production Data Hub"}


@dataclass(frozen=True, slots=True)
class KindText:
    title: str  # the problem, short (subject line)
    explain: str  # what it means, one sentence
    ok_title: str  # the recovery, short
    ok_explain: str


KINDS: dict[str, dict[str, KindText]] = {
    "heal_failed": {
        "en": KindText(
            "Index check failed",
            "The hub could not check or restore the database's indexes; queries may be slow.",
            "Indexes in order again",
            "The index check passes again.",
        ),
        "ko": KindText(
            "인덱스 점검 실패",
            "허브가 데이터베이스 인덱스를 점검하거나 복구하지 못했습니다. 조회가 느릴 수 있습니다.",
            "인덱스 정상 복구",
            "인덱스 점검이 다시 정상입니다.",
        ),
    },
    "export_rejected": {
        "en": KindText(
            "ERP export held back",
            "The latest ERP export failed verification; the last good data is still served.",
            "ERP export published",
            "A new ERP export passed verification and is served.",
        ),
        "ko": KindText(
            "ERP 내보내기 보류됨",
            "최신 ERP 내보내기가 검증을 통과하지 못해 이전 데이터를 계속 제공합니다.",
            "ERP 내보내기 게시됨",
            "새 ERP 내보내기가 검증을 통과해 제공되고 있습니다.",
        ),
    },
    "export_overdue": {
        "en": KindText(
            "ERP export overdue",
            "No new export from the ERP arrived when one was expected; the data served is "
            "getting old.",
            "ERP exports resumed",
            "A new export from the ERP has arrived.",
        ),
        "ko": KindText(
            "ERP 내보내기 지연",
            "예상한 시간까지 ERP의 새 내보내기가 오지 않았습니다. 제공 중인 데이터가 오래되고 "
            "있습니다.",
            "ERP 내보내기 재개",
            "ERP의 새 내보내기가 도착했습니다.",
        ),
    },
    "db_missing": {
        "en": KindText(
            "Database file missing",
            "The ERP's database file is not there; the hub checks again when it is back.",
            "Database file back",
            "The ERP's database file is there again.",
        ),
        "ko": KindText(
            "데이터베이스 파일 없음",
            "ERP 데이터베이스 파일이 없습니다. 파일이 돌아오면 다시 점검합니다.",
            "데이터베이스 파일 복구",
            "ERP 데이터베이스 파일이 다시 있습니다.",
        ),
    },
    "db_unreadable": {
        "en": KindText(
            "Database unreadable",
            "The ERP's database file cannot be read as an SQLite database.",
            "Database readable again",
            "The ERP's database file can be read again.",
        ),
        "ko": KindText(
            "데이터베이스를 읽을 수 없음",
            "ERP 데이터베이스 파일을 SQLite 데이터베이스로 읽을 수 없습니다.",
            "데이터베이스 다시 읽기 가능",
            "ERP 데이터베이스 파일을 다시 읽을 수 있습니다.",
        ),
    },
    "server_gave_up": {
        "en": KindText(
            "Server stopped",
            "A server (API or dashboard) kept crashing, and the hub gave up restarting it.",
            "Server running again",
            "The server is running again.",
        ),
        "ko": KindText(
            "서버 중지됨",
            "서버(API 또는 대시보드)가 계속 멈춰 허브가 재시작을 포기했습니다.",
            "서버 다시 실행 중",
            "서버가 다시 실행되고 있습니다.",
        ),
    },
    "test": {
        "en": KindText(
            "Test alert",
            "This is a test message from the Production Data Hub. If you can read it, alerts "
            "reach you this way.",
            "Test alert",
            "This is a test message from the Production Data Hub. If you can read it, alerts "
            "reach you this way.",
        ),
        "ko": KindText(
            "테스트 알림",
            "생산 데이터 허브가 보낸 테스트 메시지입니다. 이 메시지가 보이면 이 방법으로 알림을 "
            "받을 수 있습니다.",
            "테스트 알림",
            "생산 데이터 허브가 보낸 테스트 메시지입니다. 이 메시지가 보이면 이 방법으로 알림을 "
            "받을 수 있습니다.",
        ),
    },
}

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "problem": "Problem",
        "resolved": "Resolved",
        "database": "Database",
        "state": "State",
        "host": "Host",
        "time": "Time",
        "more_since": "And {n} more since {since}, not sent one by one.",
        "more": "And {n} more since the last message, not sent one by one.",
        "unknown": "Alert: {kind}",
        "unknown_ok": "Cleared: {kind}",
    },
    "ko": {
        "problem": "문제",
        "resolved": "해결",
        "database": "데이터베이스",
        "state": "상태",
        "host": "호스트",
        "time": "시간",
        "more_since": "{since} 이후 같은 알림이 {n}건 더 있었습니다 (따로 보내지 않음).",
        "more": "지난 알림 이후 같은 알림이 {n}건 더 있었습니다 (따로 보내지 않음).",
        "unknown": "알림: {kind}",
        "unknown_ok": "해결됨: {kind}",
    },
}

STATES: dict[str, dict[str, str]] = {
    "en": {"healthy": "Healthy", "working": "Working", "degraded": "Degraded",
           "error": "Error", "paused": "Paused"},
    "ko": {"healthy": "정상", "working": "작업 중", "degraded": "주의", "error": "오류",
           "paused": "일시 중지"},
}


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class _Parts:
    """An alert's texts, once, for every format."""

    subject: str
    headline: str  # the title without the app and host
    explain: str
    message: str
    more: str  # the suppressed line, or ""
    facts: list[tuple[str, str]] = field(default_factory=list)


def _lang(alert: Alert) -> Language:
    return "ko" if alert.language == "ko" else "en"


def _parts(alert: Alert) -> _Parts:
    lang = _lang(alert)
    words = WORDS[lang]
    text = KINDS.get(alert.kind, {}).get(lang)
    if text is None:
        headline = words["unknown_ok" if alert.recovered else "unknown"].format(kind=alert.kind)
        explain = ""
    elif alert.recovered:
        headline, explain = text.ok_title, text.ok_explain
    else:
        headline, explain = text.title, text.explain
    if alert.kind == "test" or text is None:
        marked = headline
    else:
        marked = f"{words['resolved' if alert.recovered else 'problem']}: {headline}"
    count = f" (+{alert.suppressed})" if alert.suppressed > 0 else ""
    subject = f"[{APP[lang]}] {marked} ({alert.host}){count}"
    more = ""
    if alert.suppressed > 0:
        if alert.suppressed_since is not None:
            more = words["more_since"].format(n=alert.suppressed,
                                              since=_when(alert.suppressed_since))
        else:
            more = words["more"].format(n=alert.suppressed)
    facts = [(words["database"], alert.db)]
    if alert.state:
        facts.append((words["state"], STATES[lang].get(alert.state, alert.state)))
    facts += [(words["host"], alert.host), (words["time"], _when(alert.time))]
    return _Parts(subject=subject, headline=marked, explain=explain,
                  message=localize(alert.message, lang), more=more, facts=facts)


def render(alert: Alert) -> tuple[str, str]:
    """The subject (title) and the plain-text body of ``alert``, in its language."""
    parts = _parts(alert)
    paragraphs = [p for p in (parts.explain, parts.message, parts.more) if p]
    facts = "\n".join(f"{label}: {value}" for label, value in parts.facts)
    return parts.subject, "\n\n".join([*paragraphs, facts]) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(alert: Alert, fmt: WebhookFormat | str) -> dict[str, Any]:
    """The body posted to a webhook of format ``fmt`` (json, teams, slack)."""
    parts = _parts(alert)
    if fmt == "json":
        subject, body = render(alert)
        return {
            "event": alert.kind,
            "recovered": alert.recovered,
            "state": alert.state,
            "message": alert.message,
            "db": alert.db,
            "time": iso(alert.time),
            "host": alert.host,
            "suppressed": alert.suppressed,
            "language": _lang(alert),
            "title": subject,
            "text": body,
        }
    if fmt == "teams":
        color = "Accent" if alert.kind == "test" else ("Good" if alert.recovered else "Attention")
        blocks: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": parts.subject, "weight": "Bolder", "size": "Medium",
             "color": color, "wrap": True},
        ]
        for text, subtle in ((parts.explain, False), (parts.message, False), (parts.more, True)):
            if text:
                blocks.append({"type": "TextBlock", "text": _clip(text, 4000), "wrap": True,
                               "isSubtle": subtle})
        blocks.append({"type": "FactSet",
                       "facts": [{"title": k, "value": v} for k, v in parts.facts]})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": blocks,
            "msteams": {"width": "Full"},
        }
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                             "contentUrl": None, "content": card}],
        }
    if fmt == "slack":
        slack_blocks: list[dict[str, Any]] = [
            {"type": "header",
             "text": {"type": "plain_text", "text": _clip(parts.subject, 150), "emoji": False}},
        ]
        body = "\n\n".join(p for p in (parts.explain, parts.message) if p)
        if body:
            slack_blocks.append({"type": "section",
                                 "text": {"type": "plain_text", "text": _clip(body, 3000),
                                          "emoji": False}})
        if parts.more:
            slack_blocks.append({"type": "context",
                                 "elements": [{"type": "plain_text", "text": parts.more}]})
        slack_blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _clip(f"*{k}*\n{_slack_escape(v)}", 2000)}
            for k, v in parts.facts
        ]})
        fallback = parts.subject + (f": {parts.message}" if parts.message else "")
        return {"text": _clip(fallback, 3000), "blocks": slack_blocks}
    raise ValueError(f"unknown webhook format {fmt!r} (json, teams, slack)")


# Channels -------------------------------------------------------------------------------


def _masked_segment(segment: str) -> str:
    """A path segment that looks like a token (long, with digits) shortened to 4 chars."""
    if len(segment) >= 16 and any(c.isdigit() for c in segment):
        return segment[:4] + "…"
    return segment


def redact_url(url: str) -> tuple[str, str]:
    """(``host[:port]/path``, ``scheme://host[:port]/path[?…]``) of ``url`` without its
    secrets: no user info, no query, and token-like path segments (Slack's, Teams') cut."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        host += f":{port}"
    path = "/".join(_masked_segment(s) for s in parts.path.split("/"))
    shown = f"{parts.scheme}://{host}{path}" + ("?…" if parts.query else "")
    return host + path, shown


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)
    return None


def _network_reason(exc: BaseException, host: str, timeout: float) -> str:
    """A person's words for a failure to reach ``host``."""
    if _find_cause(exc, ConnectionRefusedError) is not None:
        return "connection refused"
    if _find_cause(exc, socket.gaierror) is not None:
        return f"cannot find the host {host} (name lookup failed)"
    cert = _find_cause(exc, ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cert.verify_message or cert.reason})"
    tls = _find_cause(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return f"TLS failed ({tls.reason or tls})"
    if _find_cause(exc, TimeoutError) is not None:
        return f"timed out after {timeout:g} s"
    if _find_cause(exc, ConnectionResetError) is not None:
        return "connection reset by the server"
    os_error = _find_cause(exc, OSError)
    if isinstance(os_error, OSError) and os_error.strerror:
        return f"cannot connect: {os_error.strerror}"
    return f"cannot connect: {exc or type(exc).__name__}"


class WebhookChannel:
    """POSTs each alert as JSON to one URL (json, teams or slack body)."""

    def __init__(self, cfg: WebhookConfig, *, verify: ssl.SSLContext | bool = True) -> None:
        self.cfg = cfg
        self.url = cfg.url
        self.format: WebhookFormat = cfg.format
        self.headers = dict(cfg.headers)
        self.timeout = cfg.timeout
        self._verify = verify
        short, shown = redact_url(cfg.url)
        self.name = f"webhook:{short}"
        self.label = f"webhook {shown}"  # in error texts and logs
        self._host = urlsplit(cfg.url).hostname or ""

    def __repr__(self) -> str:
        return f"<WebhookChannel {self.name} {self.format}>"

    def _client(self) -> httpx.AsyncClient:
        verify = self._verify
        if verify is True:
            verify = _default_ssl_context()
        return httpx.AsyncClient(timeout=self.timeout, verify=verify, follow_redirects=False)

    async def send(self, alert: Alert) -> None:
        body = json.dumps(webhook_payload(alert, self.format), ensure_ascii=False)
        headers = httpx.Headers({"Content-Type": "application/json"})
        headers.update(self.headers)
        # Loading the CA bundle takes a tenth of a second: not on the event loop, and not
        # out of the attempt's time.
        client = await anyio.to_thread.run_sync(self._client)
        try:
            async with client:
                with anyio.fail_after(self.timeout):
                    response = await client.post(self.url, content=body.encode("utf-8"),
                                                 headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise DeliveryError(self.label, f"timed out after {self.timeout:g} s") from None
        except httpx.ConnectError as exc:
            reason = _network_reason(exc, self._host, self.timeout)
            raise DeliveryError(self.label, reason) from None
        except httpx.RemoteProtocolError:
            reason = "the server closed the connection without an answer"
            raise DeliveryError(self.label, reason) from None
        except httpx.HTTPError as exc:
            reason = _network_reason(exc, self._host, self.timeout)
            raise DeliveryError(self.label, reason) from None
        if not response.is_success:
            raise DeliveryError(self.label, _http_reason(response))


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default (certifi's CAs), made once: every webhook shares it."""
    return httpx.create_ssl_context()


def _http_reason(response: httpx.Response) -> str:
    reason = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    kind = response.headers.get("content-type", "")
    if kind.startswith(("text/plain", "application/json")):
        detail = " ".join(response.text.split())
        if detail:
            reason += f" ({_clip(detail, 200)})"
    return reason


def _ehlo_name(host: str) -> str:
    cleaned = "".join(c for c in host if c.isascii() and (c.isalnum() or c in "-."))
    return cleaned.strip("-.") or "pdh-hub"


class EmailChannel:
    """Mails each alert over SMTP (in a worker thread: smtplib blocks)."""

    def __init__(self, cfg: EmailConfig, *, ssl_context: ssl.SSLContext | None = None,
                 implicit_tls: bool | None = None) -> None:
        self.cfg = cfg
        self.name = f"email:{cfg.host}"
        self.label = f"email {cfg.host}:{cfg.port}"
        self._ssl_context = ssl_context
        # SMTPS (TLS from the first byte) on its well-known port; STARTTLS elsewhere.
        self.implicit_tls = cfg.port == 465 if implicit_tls is None else implicit_tls

    def __repr__(self) -> str:
        return f"<EmailChannel {self.label}>"

    def message(self, alert: Alert) -> EmailMessage:
        subject, body = render(alert)
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["Subject"] = subject
        msg["From"] = self.cfg.from_
        msg["To"] = ", ".join(self.cfg.to)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid("pdh", domain=_ehlo_name(alert.host))
        msg["Auto-Submitted"] = "auto-generated"  # no out-of-office replies
        msg["X-PDH-Event"] = f"{alert.kind}{' recovered' if alert.recovered else ''}"
        if body.isascii():
            msg.set_content(body)
        else:
            msg.set_content(body, charset="utf-8", cte="base64")
        return msg

    async def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        helo = _ehlo_name(alert.host)
        await anyio.to_thread.run_sync(self._send_blocking, msg, helo, abandon_on_cancel=True)

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _send_blocking(self, msg: EmailMessage, helo: str) -> None:
        cfg = self.cfg
        try:
            smtp: smtplib.SMTP
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=helo,
                                        timeout=cfg.timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=helo,
                                    timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                if cfg.starttls and not self.implicit_tls:
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if cfg.username:
                    smtp.login(cfg.username, cfg.secret())
                refused = smtp.send_message(msg)
        except DeliveryError:
            raise
        except Exception as exc:  # smtplib, ssl and socket errors: say which, for a person
            raise DeliveryError(self.label, self._reason(exc)) from None
        if refused:
            who = ", ".join(f"{addr} ({_smtp_text(code, text)})"
                            for addr, (code, text) in refused.items())
            # The others have it: another attempt would send it to them twice.
            raise DeliveryError(self.label, f"recipient refused: {who}", retryable=False)

    def _reason(self, exc: Exception) -> str:
        cfg = self.cfg
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"login refused ({_smtp_text(exc.smtp_code, exc.smtp_error)})"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            text = str(exc)
            if "STARTTLS" in text:
                return ("the server does not offer STARTTLS (set alerts.email.starttls = false "
                        "if it only takes plain connections)")
            if "AUTH" in text:
                return "the server offers no login (SMTP AUTH) on this connection"
            return text
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            who = ", ".join(f"{addr} ({_smtp_text(code, text)})"
                            for addr, (code, text) in exc.recipients.items())
            return f"recipient refused: {who}"
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return f"sender {exc.sender} refused ({_smtp_text(exc.smtp_code, exc.smtp_error)})"
        if isinstance(exc, smtplib.SMTPDataError):
            return f"message refused ({_smtp_text(exc.smtp_code, exc.smtp_error)})"
        if isinstance(exc, smtplib.SMTPConnectError):
            return f"the server refused the session ({_smtp_text(exc.smtp_code, exc.smtp_error)})"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"the server answered {_smtp_text(exc.smtp_code, exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            # smtplib reports a read that timed out as a closed connection
            if _find_cause(exc, TimeoutError) is not None:
                return f"timed out after {cfg.timeout:g} s"
            return "the server closed the connection"
        if isinstance(exc, OSError):
            return _network_reason(exc, cfg.host, cfg.timeout)
        return f"{type(exc).__name__}: {exc}"


def _smtp_text(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{code} {text}".split())


def channels_of(cfg: AlertsConfig, *,
                ssl_context: ssl.SSLContext | None = None) -> list[AlertChannel]:
    """The channels ``cfg`` configures: webhooks in order, then email. Names are unique
    (a second webhook to the same place gets ``#2``). ``ssl_context`` (tests, a company
    CA) is used for STARTTLS/SMTPS and for https webhooks."""
    channels: list[AlertChannel] = []
    seen: dict[str, int] = {}

    def unique(channel: WebhookChannel | EmailChannel) -> None:
        n = seen.get(channel.name, 0) + 1
        seen[channel.name] = n
        if n > 1:
            channel.name = f"{channel.name}#{n}"
        channels.append(channel)

    for hook in cfg.webhook:
        unique(WebhookChannel(hook, verify=ssl_context if ssl_context is not None else True))
    if cfg.email is not None:
        unique(EmailChannel(cfg.email, ssl_context=ssl_context))
    return channels


# Dispatcher -----------------------------------------------------------------------------


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
