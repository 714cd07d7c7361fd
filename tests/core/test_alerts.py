"""Alert delivery against real servers on 127.0.0.1: an HTTP receiver (json, Teams and
Slack bodies; 500, hang, refused), and an SMTP server (aiosmtpd; STARTTLS with a
self-signed CA from trustme; AUTH)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.alerts import (
    KINDS,
    Alert,
    DeliveryError,
    Dispatcher,
    EmailChannel,
    WebhookChannel,
    channels_of,
    render,
    send_test,
    webhook_payload,
)
from core.config import AlertsConfig, EmailConfig, WebhookConfig
from tests.conftest import await_for, free_port

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 31, 9, 15, 2, tzinfo=UTC)
DB = "C:\\ERP\\생산\\production_analysis.db"


def make_alert(**changes: Any) -> Alert:
    base = Alert(kind="heal_failed", recovered=False, state="error",
                 message="index idx_records_lot_no is missing", db=DB, time=T0, host="PC-01")
    return replace(base, **changes)


# A real HTTP receiver -------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class Receiver:
    """An HTTP server in a thread on a free loopback port. ``/ok`` answers 200,
    ``/fail`` 500, ``/gone`` 404 with a Slack-like text body, ``/hang`` not at all
    (until the receiver closes). Every request is recorded before it is answered."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                body))
                try:
                    if self.path.startswith("/hang"):
                        receiver.release.wait(30)
                        return
                    if self.path.startswith("/fail"):
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    elif self.path.startswith("/gone"):
                        self.send_response(404)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", "10")
                        self.end_headers()
                        self.wfile.write(b"no_service")
                    else:
                        self.send_response(200)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        return len(self.seen(path))

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def hook(url: str, **kw: Any) -> WebhookChannel:
    return WebhookChannel(WebhookConfig(url=url, **kw))


# A real SMTP server ---------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: keeps what it was sent, and whether the session was TLS."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed, tls))
        return "250 OK"


def check_password(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"hub"
          and auth_data.password == b"right")
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


@contextmanager
def smtp_server(**params: Any) -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **params)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def mail_config(port: int, **kw: Any) -> EmailConfig:
    data: dict[str, Any] = {"host": "127.0.0.1", "port": port, "starttls": False,
                            "from": "생산 허브 <hub@factory.example>",
                            "to": ["a@factory.example", "b@factory.example"], "timeout": 5}
    data.update(kw)
    return EmailConfig.model_validate(data)


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def dispatcher(*channels: Any, retries: int = 3, backoff: float = 0.0,
               **kw: Any) -> Dispatcher:
    return Dispatcher(channels, retries=retries, retry_backoff=backoff, **kw)


# Texts ----------------------------------------------------------------------------------


def has_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def test_render_every_kind_in_korean_and_english() -> None:
    kinds = ["heal_failed", "export_rejected", "export_overdue", "db_missing",
             "db_unreadable", "server_gave_up", "test"]
    assert set(kinds) <= set(KINDS)
    for kind in kinds:
        texts: dict[tuple[str, bool], tuple[str, str]] = {}
        for lang in ("en", "ko"):
            for recovered in (False, True):
                subject, body = render(make_alert(kind=kind, recovered=recovered,
                                                  language=lang))
                texts[lang, recovered] = subject, body
                assert "PC-01" in subject and DB in body and "2026-03-31 09:15:02 UTC" in body
                assert has_hangul(subject) is (lang == "ko"), subject
                assert "index idx_records_lot_no is missing" in body
                assert "more" not in body and "건 더" not in body
        assert texts["en", False] != texts["ko", False]
        for lang in ("en", "ko"):
            words = KINDS[kind][lang]
            assert words.title in texts[lang, False][0] and words.explain in texts[lang, False][1]
            assert (words.ok_title in texts[lang, True][0]
                    and words.ok_explain in texts[lang, True][1])
            if kind != "test":
                assert words.title != words.ok_title and words.explain != words.ok_explain
        if kind != "test":
            assert texts["en", False][0] != texts["en", True][0]
            assert texts["en", False][0].startswith("[Production Data Hub] Problem: ")
            assert texts["en", True][0].startswith("[Production Data Hub] Resolved: ")
            assert texts["ko", True][0].startswith("[생산 데이터 허브] 해결: ")
    subject, body = render(make_alert(kind="db_missing", state="degraded", language="ko",
                                      message=f"database file not found: {DB}"))
    assert subject == "[생산 데이터 허브] 문제: 데이터베이스 파일 없음 (PC-01)"
    # The kind's text in Korean; the detail as the hub logged it (a path, an error).
    assert body.startswith("ERP 데이터베이스 파일이 없습니다.") and "상태: 주의" in body
    assert f"\n\ndatabase file not found: {DB}\n\n" in body


def test_render_counts_suppressed_alerts() -> None:
    since = datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    subject, body = render(make_alert(suppressed=3, suppressed_since=since))
    assert subject.endswith("(PC-01) (+3)")
    assert "And 3 more since 2026-03-31 09:00:00 UTC, not sent one by one." in body
    _, body = render(make_alert(suppressed=3))
    assert "And 3 more since the last message" in body
    _, body = render(make_alert(suppressed=2, suppressed_since=since, language="ko"))
    assert "2026-03-31 09:00:00 UTC 이후 같은 알림이 2건 더 있었습니다" in body
    assert webhook_payload(make_alert(suppressed=4), "json")["suppressed"] == 4


def test_unknown_kind_and_format() -> None:
    subject, _ = render(make_alert(kind="something_new"))
    assert "something_new" in subject
    with pytest.raises(ValueError, match="unknown webhook format"):
        webhook_payload(make_alert(), "xml")


def test_channel_names_are_unique_and_keep_secrets_out() -> None:
    cfg = AlertsConfig.model_validate({
        "webhook": [
            {"url": "https://hooks.example/a?sig=SECRET1"},
            {"url": "https://user:pw@hooks.example/a?sig=SECRET2", "format": "teams"},
            {"url": "https://hooks.slack.com/services/T0AB/B0CD/x1y2z3SECRETtoken00", "format":
             "slack"},
        ],
        "email": {"host": "smtp.example", "from": "h@x.example", "to": ["p@x.example"]},
    })
    channels = channels_of(cfg)
    names = [c.name for c in channels]
    assert names == ["webhook:hooks.example/a", "webhook:hooks.example/a#2",
                     "webhook:hooks.slack.com/services/T0AB/B0CD/x1y2…", "email:smtp.example"]
    labels = [getattr(c, "label", "") for c in channels]
    assert labels[0] == "webhook https://hooks.example/a?…"
    assert not any("SECRET" in t or "pw" in t for t in names + labels)


# Webhooks -------------------------------------------------------------------------------


async def test_json_teams_and_slack_bodies_reach_a_real_receiver(receiver: Receiver) -> None:
    alert = make_alert(language="ko", suppressed=1)
    subject, body = render(alert)
    for fmt in ("json", "teams", "slack"):
        await hook(receiver.url(f"/ok?fmt={fmt}"), format=fmt,
                   headers={"X-Token": "s3cret"}).send(alert)
    got = {r.path.split("=")[1]: r for r in receiver.requests}
    for request in got.values():
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-token"] == "s3cret"
        assert "인덱스 점검 실패".encode() in request.body  # UTF-8 on the wire

    assert got["json"].json() == {
        "event": "heal_failed", "recovered": False, "state": "error",
        "message": "index idx_records_lot_no is missing", "db": DB,
        "time": "2026-03-31T09:15:02.000Z", "host": "PC-01", "suppressed": 1,
        "language": "ko", "title": subject, "text": body,
    }
    assert subject == "[생산 데이터 허브] 문제: 인덱스 점검 실패 (PC-01) (+1)"

    teams = got["teams"].json()
    assert teams["type"] == "message" and len(teams["attachments"]) == 1
    attachment = teams["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, *texts, facts = card["body"]
    assert title == {"type": "TextBlock", "text": subject, "weight": "Bolder",
                     "size": "Medium", "color": "Attention", "wrap": True}
    assert [t["text"] for t in texts] == [
        KINDS["heal_failed"]["ko"].explain, "index idx_records_lot_no is missing",
        "지난 알림 이후 같은 알림이 1건 더 있었습니다 (따로 보내지 않음)."]
    assert facts["type"] == "FactSet"
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "데이터베이스": DB, "상태": "오류", "호스트": "PC-01", "시간": "2026-03-31 09:15:02 UTC"}

    slack = got["slack"].json()
    assert slack["text"] == f"{subject}: index idx_records_lot_no is missing"
    header, section, context, fields = slack["blocks"]
    assert header["type"] == "header" and header["text"]["text"] == subject
    assert section["text"] == {"type": "plain_text", "emoji": False, "text":
                               KINDS["heal_failed"]["ko"].explain
                               + "\n\nindex idx_records_lot_no is missing"}
    assert context["elements"][0]["text"].startswith("지난 알림 이후")
    assert [f["text"] for f in fields["fields"]][:2] == [f"*데이터베이스*\n{DB}", "*상태*\n오류"]

    recovered = webhook_payload(make_alert(recovered=True), "teams")
    assert recovered["attachments"][0]["content"]["body"][0]["color"] == "Good"


async def test_a_failing_receiver_is_retried_with_backoff_and_recorded(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.alerts")
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await anyio.lowlevel.checkpoint()

    channel = hook(receiver.url("/fail"))
    d = dispatcher(channel, retries=3, backoff=0.5, sleep=sleep)
    async with anyio.create_task_group() as tg:
        await tg.start(d.run)
        d.submit(make_alert())
        await await_for(lambda: d.status()[channel.name].last_error, 10, message="last_error")
        tg.cancel_scope.cancel()
    assert receiver.count("/fail") == 3
    assert delays == [0.5, 1.0]
    status = d.status()[channel.name]
    assert status.last_error == "HTTP 500 Internal Server Error" and status.last_ok is None
    assert status.last_error_at is not None
    expected = f"webhook http://127.0.0.1:{receiver.port}/fail: HTTP 500 Internal Server Error"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(warnings) == 2 and all(expected in w for w in warnings)
    assert len(errors) == 1 and expected in errors[0] and "after 3 attempt(s)" in errors[0]


async def test_http_error_text_from_the_service_is_shown(receiver: Receiver) -> None:
    with pytest.raises(DeliveryError) as caught:
        await hook(receiver.url("/gone")).send(make_alert())
    assert caught.value.reason == "HTTP 404 Not Found (no_service)"


async def test_a_hanging_receiver_times_out_on_each_attempt(receiver: Receiver) -> None:
    channel = hook(receiver.url("/hang"), timeout=0.3)
    d = dispatcher(channel, retries=2)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        await tg.start(d.run)
        d.submit(make_alert())
        await await_for(lambda: d.status()[channel.name].last_error, 10, message="timeout")
        tg.cancel_scope.cancel()
    assert time.monotonic() - started >= 0.6
    assert receiver.count("/hang") == 2
    assert d.status()[channel.name].last_error == "timed out after 0.3 s"


class Counting:
    """Counts the attempts a channel is asked to make (nobody listens to see them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.attempts = 0

    async def send(self, alert: Alert) -> None:
        self.attempts += 1
        await self.inner.send(alert)


async def test_a_refused_connection_is_retried_and_recorded() -> None:
    channel = Counting(hook(f"http://127.0.0.1:{free_port()}/hook"))
    d = dispatcher(channel, retries=3)
    async with anyio.create_task_group() as tg:
        await tg.start(d.run)
        d.submit(make_alert())
        await await_for(lambda: d.status()[channel.name].last_error, 10, message="refused")
        tg.cancel_scope.cancel()
    assert channel.attempts == 3
    assert d.status()[channel.name].last_error == "connection refused"


async def test_hanging_channels_never_hold_up_another_and_cancel_ends_it_promptly(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.alerts")
    with silent_server() as mute_port:
        stuck_hook = hook(receiver.url("/hang"), timeout=30)
        stuck_mail = EmailChannel(mail_config(mute_port, timeout=30))
        healthy = hook(receiver.url("/ok"))
        d = dispatcher(stuck_hook, stuck_mail, healthy, retries=3)
        async with anyio.create_task_group() as tg:
            await tg.start(d.run)
            for n in range(3):
                d.submit(make_alert(message=f"alert {n}"))
            await await_for(lambda: receiver.count("/ok") == 3 and receiver.count("/hang"),
                            10, message="3 at /ok, and the hanging one asked")
            assert receiver.count("/hang") == 1  # still on its first attempt
            assert d.status()[healthy.name].last_ok is not None
            assert d.status()[stuck_hook.name].last_ok is None
            assert d.pending() == {stuck_hook.name: 2, stuck_mail.name: 2, healthy.name: 0}
            assert [r.json()["message"] for r in receiver.seen("/ok")] == [
                "alert 0", "alert 1", "alert 2"]
            cancelled_at = time.monotonic()
            tg.cancel_scope.cancel()
        assert time.monotonic() - cancelled_at < 1.0
    assert d.status()[stuck_hook.name].last_error is None  # cancelled, not failed


class Gate:
    """A channel that holds each delivery until the test opens the gate."""

    name = "gate"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.delivered: list[str] = []
        self.open = anyio.Event()

    async def send(self, alert: Alert) -> None:
        self.started.append(alert.message)
        await self.open.wait()
        self.delivered.append(alert.message)


async def test_a_full_queue_drops_the_oldest_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate()
    d = dispatcher(gate, queue_size=2)
    d.submit(make_alert(message="a1"))  # before run: kept until the worker starts
    async with anyio.create_task_group() as tg:
        await tg.start(d.run)
        await await_for(lambda: gate.started == ["a1"], 5, message="a1 in flight")
        for name in ("a2", "a3", "a4"):
            d.submit(make_alert(message=name))
        assert d.pending() == {"gate": 2}
        gate.open.set()
        await await_for(lambda: len(gate.delivered) == 3, 5, message="three delivered")
        tg.cancel_scope.cancel()
    assert gate.delivered == ["a1", "a3", "a4"]
    full = [r for r in caplog.records if "is full" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING


async def test_send_test_tries_each_channel_once(receiver: Receiver) -> None:
    cfg = AlertsConfig.model_validate({
        "retries": 3, "retry_backoff": 10,
        "webhook": [{"url": receiver.url("/ok")}, {"url": receiver.url("/fail")}],
    })
    results = await send_test(cfg, language="en", db=DB, host="PC-01")
    assert results == {f"webhook:127.0.0.1:{receiver.port}/ok": None,
                       f"webhook:127.0.0.1:{receiver.port}/fail":
                       "HTTP 500 Internal Server Error"}
    assert receiver.count("/fail") == 1
    sent = receiver.seen("/ok")[0].json()
    assert sent["event"] == "test" and sent["title"] == (
        "[Production Data Hub] Test alert (PC-01)")


# Email ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ko", "en"])
async def test_email_reaches_a_real_smtp_server(lang: str) -> None:
    alert = make_alert(kind="db_unreadable", state="degraded", language=lang,
                       message="file is not a database")
    subject, body = render(alert)
    with smtp_server() as (mailbox, port):
        await EmailChannel(mail_config(port)).send(alert)
        await await_for(lambda: mailbox.messages, 5, message="a mail")
    (mail_from, rcpt, msg, tls), = mailbox.messages
    assert mail_from == "hub@factory.example"
    assert rcpt == ["a@factory.example", "b@factory.example"]
    assert msg["Subject"] == subject and msg["From"] == "생산 허브 <hub@factory.example>"
    assert msg["To"] == "a@factory.example, b@factory.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == body  # MIME text has CRLF lines
    assert "file is not a database" in body
    assert has_hangul(subject) is (lang == "ko") and has_hangul(body)  # the DB path
    assert msg.get_content_charset() == "utf-8"
    assert not tls


async def test_email_starttls_with_a_private_ca_and_login(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with smtp_server(tls_context=server_tls, require_starttls=True,
                     authenticator=check_password) as (mailbox, port):
        cfg = mail_config(port, starttls=True, username="hub", password="right")
        await EmailChannel(cfg, ssl_context=client_tls).send(make_alert(language="ko"))
        await await_for(lambda: mailbox.messages, 5, message="a mail")
        assert mailbox.messages[0][3] is True  # the session was TLS
        assert mailbox.messages[0][2]["Subject"] == render(make_alert(language="ko"))[0]

        with pytest.raises(DeliveryError) as caught:  # the system's CAs: not trusted
            await EmailChannel(cfg).send(make_alert())
        assert caught.value.reason.startswith("TLS certificate not trusted"), caught.value

        plain = mail_config(port, starttls=False, username="hub", password="right")
        with pytest.raises(DeliveryError) as caught:  # AUTH only after STARTTLS
            await EmailChannel(plain).send(make_alert())
        assert "no login" in caught.value.reason


async def test_email_bad_password_is_a_clear_error_and_recorded(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.alerts")
    with smtp_server(tls_context=server_tls, require_starttls=True,
                     authenticator=check_password) as (mailbox, port):
        cfg = mail_config(port, starttls=True, username="hub", password="wrong")
        channel = EmailChannel(cfg, ssl_context=client_tls)
        with pytest.raises(DeliveryError) as caught:
            await channel.send(make_alert())
        assert str(caught.value) == (
            f"email 127.0.0.1:{port}: login refused (535 5.7.8 Authentication credentials "
            "invalid)")
        d = dispatcher(channel, retries=2)
        async with anyio.create_task_group() as tg:
            await tg.start(d.run)
            d.submit(make_alert())
            await await_for(lambda: d.status()[channel.name].last_error, 10, message="error")
            tg.cancel_scope.cancel()
        assert d.status()["email:127.0.0.1"].last_error == (
            "login refused (535 5.7.8 Authentication credentials invalid)")
        assert mailbox.messages == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "login refused" in errors[0]


async def test_email_over_smtps(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    with smtp_server(ssl_context=server_tls) as (mailbox, port):
        channel = EmailChannel(mail_config(port), ssl_context=client_tls, implicit_tls=True)
        await channel.send(make_alert())
        await await_for(lambda: mailbox.messages, 5, message="a mail")
    assert mailbox.messages[0][3] is True


async def test_email_refused_and_silent_servers() -> None:
    with pytest.raises(DeliveryError) as caught:
        await EmailChannel(mail_config(free_port())).send(make_alert())
    assert caught.value.reason == "connection refused"
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            await EmailChannel(mail_config(port, timeout=0.3)).send(make_alert())
        assert caught.value.reason == "timed out after 0.3 s"
        assert time.monotonic() - started < 3
