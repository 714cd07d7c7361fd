"""The hub's status messages in Korean.

The hub writes its status ``message`` in English (logs, API). The tray and the
dashboard show it in the user's language through :func:`localize`; a message not in the
catalogue (an error naming a file, index or column) is shown as it is.
"""

from __future__ import annotations

import re

KO: dict[str, str] = {
    "starting": "시작하는 중",
    "update detected, auto mode off": "업데이트 감지됨, 자동 모드 꺼짐",
    "waiting for the ERP to finish writing": "ERP가 쓰기를 마칠 때까지 기다리는 중",
    "database missing": "데이터베이스 파일 없음",
    "checking indexes": "인덱스 점검 중",
    "the file changed during the check; waiting again": "점검 중 파일이 바뀌어 다시 기다리는 중",
    "index check failed": "인덱스 점검 실패",
    "indexes restored": "인덱스 복구됨",
    "all indexes in place": "모든 인덱스 정상",
    "internal error; see the log": "내부 오류; 로그를 확인하세요",
    "copying and verifying the export": "내보내기를 복사하고 검증하는 중",
    "the file changed while it was copied; waiting again": "복사 중 파일이 바뀌어 다시 기다리는 중",
    "snapshot failed": "스냅샷을 만들지 못함",
    "publishing the held-back export": "보류된 내보내기를 게시하는 중",
    "held-back export published by request": "요청에 따라 보류된 내보내기를 게시함",
}

_WAITING = re.compile(r"update detected; waiting ([\d.]+) s for the ERP to finish")
_PUBLISHED = re.compile(r"data as of (.+) published")
_HELD = re.compile(r"export held back: (.+)")


def localize(message: str, lang: str) -> str:
    """``message`` in ``lang`` ("ko" or "en"); unknown messages are returned unchanged."""
    if lang != "ko" or not message:
        return message
    if message in KO:
        return KO[message]
    waiting = _WAITING.fullmatch(message)
    if waiting:
        return f"업데이트 감지됨; ERP 쓰기 완료를 {waiting.group(1)}초 동안 확인하는 중"
    published = _PUBLISHED.fullmatch(message)
    if published:
        return f"{published.group(1)} 기준 데이터 게시됨"
    held = _HELD.fullmatch(message)
    if held:
        return f"내보내기 보류됨 (검증 실패): {held.group(1)}"
    return message
