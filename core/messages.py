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
}

_WAITING = re.compile(r"update detected; waiting ([\d.]+) s for the ERP to finish")


def localize(message: str, lang: str) -> str:
    """``message`` in ``lang`` ("ko" or "en"); unknown messages are returned unchanged."""
    if lang != "ko" or not message:
        return message
    if message in KO:
        return KO[message]
    waiting = _WAITING.fullmatch(message)
    if waiting:
        return f"업데이트 감지됨; ERP 쓰기 완료를 {waiting.group(1)}초 동안 확인하는 중"
    return message
