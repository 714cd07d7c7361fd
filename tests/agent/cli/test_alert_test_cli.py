"""``pdh alert-test`` as a user runs it: a child process, a config file, real receivers."""

from __future__ import annotations

from pathlib import Path

from tests.agent.cli.test_cli import pdh, write_config
from tests.conftest import free_port
from tests.core.test_alerts import Receiver, smtp_server


def test_alert_test_delivers_to_every_channel(tmp_path: Path) -> None:
    with Receiver() as receiver, smtp_server() as (mailbox, smtp_port):
        cfg = write_config(tmp_path, tmp_path / "p.db", (
            '[ui]\nlanguage = "ko"\n'
            f'[[alerts.webhook]]\nurl = "{receiver.url("/ok")}"\nformat = "teams"\n'
            f'[[alerts.webhook]]\nurl = "{receiver.url("/ok?sig=SECRET")}"\n'
            f'[alerts.email]\nhost = "127.0.0.1"\nport = {smtp_port}\nstarttls = false\n'
            'from = "hub@factory.example"\nto = ["ops@factory.example"]\n'))
        done = pdh("alert-test", "--config", str(cfg), timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"webhook:127.0.0.1:{receiver.port}/ok: ok",
            f"webhook:127.0.0.1:{receiver.port}/ok#2: ok",
            "email:127.0.0.1: ok",
        ]
        assert "SECRET" not in done.stdout + done.stderr
        teams, plain = sorted(receiver.requests, key=lambda r: r.path)
        card = teams.json()["attachments"][0]["content"]
        assert card["body"][0]["text"].startswith("[생산 데이터 허브] 테스트 알림 (")
        sent = plain.json()
        assert sent["event"] == "test" and sent["language"] == "ko"
        assert sent["db"] == str((tmp_path / "p.db").resolve())
        (_, rcpt, msg, _), = mailbox.messages
        assert rcpt == ["ops@factory.example"] and "테스트 알림" in msg["Subject"]


def test_alert_test_says_which_channel_failed(tmp_path: Path) -> None:
    refused = f"http://127.0.0.1:{free_port()}/hook"
    with Receiver() as receiver:
        cfg = write_config(tmp_path, tmp_path / "p.db", (
            '[ui]\nlanguage = "en"\n'
            f'[[alerts.webhook]]\nurl = "{receiver.url("/ok")}"\n'
            f'[[alerts.webhook]]\nurl = "{refused}"\n'
            f'[[alerts.webhook]]\nurl = "{receiver.url("/fail")}"\n'))
        done = pdh("alert-test", "--config", str(cfg), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"webhook:127.0.0.1:{receiver.port}/ok: ok",
        f"webhook:{refused.removeprefix('http://')}: connection refused",
        f"webhook:127.0.0.1:{receiver.port}/fail: HTTP 500 Internal Server Error",
    ]
    assert receiver.count("/fail") == 1  # a test: one attempt, no retries
    assert receiver.seen("/ok")[0].json()["title"].startswith("[Production Data Hub] Test")


def test_alert_test_without_a_channel_or_with_a_bad_url(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tmp_path / "p.db")
    done = pdh("alert-test", "--config", str(cfg), timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "no alert channel is configured" in done.stderr and str(cfg) in done.stderr

    cfg = write_config(tmp_path, tmp_path / "p.db",
                       '[[alerts.webhook]]\nurl = "ftp://files.example/x"\n')
    done = pdh("alert-test", "--config", str(cfg), timeout=60)
    assert done.returncode == 2
    assert "alerts.webhook[0].url" in done.stderr and "http" in done.stderr
