"""An alert's texts: the subject and body in its language, and each webhook format's body."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.alerts.model import Alert, Language, WebhookFormat
from core.eventlog import iso
from core.words import SHARED, Texts, state_label


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

WORDS = Texts({
    "problem": {"ko": "문제", "en": "Problem"},
    "resolved": {"ko": "해결", "en": "Resolved"},
    "database": {"ko": "데이터베이스", "en": "Database"},
    "state": {"ko": "상태", "en": "State"},
    "host": {"ko": "호스트", "en": "Host"},
    "time": {"ko": "시간", "en": "Time"},
    "more_since": {
        "ko": "{since} 이후 같은 알림이 {n}건 더 있었습니다 (따로 보내지 않음).",
        "en": "And {n} more since {since}, not sent one by one.",
    },
    "more": {
        "ko": "지난 알림 이후 같은 알림이 {n}건 더 있었습니다 (따로 보내지 않음).",
        "en": "And {n} more since the last message, not sent one by one.",
    },
    "unknown": {"ko": "알림: {kind}", "en": "Alert: {kind}"},
    "unknown_ok": {"ko": "해결됨: {kind}", "en": "Cleared: {kind}"},
}, base=SHARED)


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
    text = KINDS.get(alert.kind, {}).get(lang)
    if text is None:
        headline = WORDS("unknown_ok" if alert.recovered else "unknown", lang, kind=alert.kind)
        explain = ""
    elif alert.recovered:
        headline, explain = text.ok_title, text.ok_explain
    else:
        headline, explain = text.title, text.explain
    if alert.kind == "test" or text is None:
        marked = headline
    else:
        marked = f"{WORDS('resolved' if alert.recovered else 'problem', lang)}: {headline}"
    count = f" (+{alert.suppressed})" if alert.suppressed > 0 else ""
    subject = f"[{WORDS('title', lang)}] {marked} ({alert.host}){count}"
    more = ""
    if alert.suppressed > 0:
        if alert.suppressed_since is not None:
            more = WORDS("more_since", lang, n=alert.suppressed,
                         since=_when(alert.suppressed_since))
        else:
            more = WORDS("more", lang, n=alert.suppressed)
    facts = [(WORDS("database", lang), alert.db)]
    if alert.state:
        facts.append((WORDS("state", lang), state_label(alert.state, lang)))
    facts += [(WORDS("host", lang), alert.host), (WORDS("time", lang), _when(alert.time))]
    return _Parts(subject=subject, headline=marked, explain=explain,
                  message=alert.message, more=more, facts=facts)


def render(alert: Alert) -> tuple[str, str]:
    """The subject (title) and the plain-text body of ``alert``, in its language."""
    parts = _parts(alert)
    paragraphs = [p for p in (parts.explain, parts.message, parts.more) if p]
    facts = "\n".join(f"{label}: {value}" for label, value in parts.facts)
    return parts.subject, "\n\n".join([*paragraphs, facts]) + "\n"


def clip(text: str, limit: int) -> str:
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
                blocks.append({"type": "TextBlock", "text": clip(text, 4000), "wrap": True,
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
             "text": {"type": "plain_text", "text": clip(parts.subject, 150), "emoji": False}},
        ]
        body = "\n\n".join(p for p in (parts.explain, parts.message) if p)
        if body:
            slack_blocks.append({"type": "section",
                                 "text": {"type": "plain_text", "text": clip(body, 3000),
                                          "emoji": False}})
        if parts.more:
            slack_blocks.append({"type": "context",
                                 "elements": [{"type": "plain_text", "text": parts.more}]})
        slack_blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": clip(f"*{k}*\n{_slack_escape(v)}", 2000)}
            for k, v in parts.facts
        ]})
        fallback = parts.subject + (f": {parts.message}" if parts.message else "")
        return {"text": clip(fallback, 3000), "blocks": slack_blocks}
    raise ValueError(f"unknown webhook format {fmt!r} (json, teams, slack)")
