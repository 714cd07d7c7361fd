"""Every status message the hub can set has a Korean rendering."""

from __future__ import annotations

import re
from pathlib import Path

from core.messages import KO, localize

HUB = Path(__file__).resolve().parents[2] / "core" / "hub.py"


def test_every_fixed_hub_message_is_in_the_catalogue() -> None:
    source = HUB.read_text(encoding="utf-8")
    fixed = set(re.findall(r'_set\((?:Activity\.\w+, )?(?:message=)?"([^"]+)"\)', source))
    fixed |= set(re.findall(r'self\._message = "([^"]+)"', source))
    fixed |= set(re.findall(r'message = "([^"]+)"', source))
    assert fixed, "found no messages in core/hub.py"
    assert fixed <= set(KO), sorted(fixed - set(KO))


def test_localize() -> None:
    assert localize("indexes restored", "ko") == "인덱스 복구됨"
    assert localize("indexes restored", "en") == "indexes restored"
    assert localize("update detected; waiting 15 s for the ERP to finish", "ko") == (
        "업데이트 감지됨; ERP 쓰기 완료를 15초 동안 확인하는 중"
    )
    odd = "index idx_records_lot_no: table production_records has no column lot_no"
    assert localize(odd, "ko") == odd
