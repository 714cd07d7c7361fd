"""The places alerts go: webhooks (httpx) and email (smtplib in a worker thread)."""

from __future__ import annotations

import email.policy
import functools
import json
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

import anyio
import httpx

from core.alerts.model import Alert, AlertChannel, DeliveryError, WebhookFormat
from core.alerts.texts import clip, render, webhook_payload
from core.config import AlertsConfig, EmailConfig, WebhookConfig


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
            reason += f" ({clip(detail, 200)})"
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
