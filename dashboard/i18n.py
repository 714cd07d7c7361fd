"""Labels of the dashboard in Korean and English, and number and time formatting.

Every text a person reads on the page comes from :data:`LABELS` through :func:`tr`
(``tr(key, lang)``, as every table of :class:`core.words.Texts` is called), so a missing
translation is a test failure, not a half-English page. The product's name and the hub's
states are the shared words of :mod:`core.words`.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from core.words import LANGUAGES, SHARED, Language, Texts

LANG_NAMES: dict[Language, str] = {"ko": "한국어", "en": "English"}
DEFAULT_LANG: Language = "ko"  # the factory's language when nothing says otherwise

LABELS = Texts({
    # page
    "language": {"ko": "언어", "en": "Language"},
    "data_as_of": {"ko": "데이터 기준: {when}", "en": "Data as of {when}"},
    "period": {"ko": "{start} ~ {end} ({days}일)", "en": "{start} to {end} ({days} days)"},
    # filters
    "filters": {"ko": "필터", "en": "Filters"},
    "date_range": {"ko": "기간", "en": "Date range"},
    "plant": {"ko": "공장", "en": "Plant"},
    "line": {"ko": "라인", "en": "Line"},
    "item_group": {"ko": "품목군", "en": "Item group"},
    "item": {"ko": "품목", "en": "Item"},
    "shift": {"ko": "근무조", "en": "Shift"},
    "all": {"ko": "전체", "en": "All"},
    "shift_D": {"ko": "주간", "en": "Day"},
    "shift_N": {"ko": "야간", "en": "Night"},
    "reset_filters": {"ko": "필터 초기화", "en": "Reset filters"},
    "bad_filter": {
        "ko": "주소의 필터 값을 쓸 수 없어 무시했습니다: {detail}",
        "en": "A filter in the address could not be used and was ignored: {detail}",
    },
    # KPIs
    "good_qty": {"ko": "양품 수량", "en": "Good quantity"},
    "defect_qty": {"ko": "불량 수량", "en": "Defect quantity"},
    "defect_rate": {"ko": "불량률", "en": "Defect rate"},
    "achievement": {"ko": "계획 달성률", "en": "Plan achievement"},
    "run_hours": {"ko": "가동 시간", "en": "Run time"},
    "downtime_hours": {"ko": "비가동 시간", "en": "Downtime"},
    "hours": {"ko": "{value}시간", "en": "{value} h"},
    "vs_previous": {
        "ko": "직전 동일 기간({start} ~ {end}) 대비",
        "en": "vs the previous period ({start} to {end})",
    },
    "no_previous": {"ko": "직전 기간 데이터 없음", "en": "no data for the previous period"},
    "no_records": {
        "ko": "선택한 조건에 해당하는 생산 실적이 없습니다.",
        "en": "No production records match these filters.",
    },
    # charts
    "daily_trend": {"ko": "일별 추이", "en": "Daily trend"},
    "work_date": {"ko": "작업일", "en": "Work date"},
    "good": {"ko": "양품", "en": "Good"},
    "plan": {"ko": "계획", "en": "Plan"},
    "quantity": {"ko": "수량", "en": "Quantity"},
    "by_line": {"ko": "라인별 생산", "en": "Production by line"},
    "top_items": {"ko": "상위 품목 (양품 수량)", "en": "Top items (good quantity)"},
    "defect_pareto": {"ko": "불량 유형 파레토", "en": "Defect Pareto"},
    "defect_type": {"ko": "불량 유형", "en": "Defect type"},
    "cumulative_share": {"ko": "누적 비율", "en": "Cumulative share"},
    "no_defects": {"ko": "불량 기록이 없습니다.", "en": "No defects recorded."},
    # records
    "records": {"ko": "생산 실적", "en": "Production records"},
    "rows_per_page": {"ko": "페이지당 행", "en": "Rows per page"},
    "page_n": {"ko": "{page} 페이지", "en": "Page {page}"},
    "first_page": {"ko": "처음", "en": "First"},
    "prev_page": {"ko": "이전", "en": "Previous"},
    "next_page": {"ko": "다음", "en": "Next"},
    "download_csv": {"ko": "CSV 다운로드", "en": "Download CSV"},
    "records_total": {"ko": "전체 {n}건", "en": "{n} records"},
    "col_record_id": {"ko": "실적 ID", "en": "Record ID"},
    "col_work_date": {"ko": "작업일", "en": "Work date"},
    "col_shift": {"ko": "근무조", "en": "Shift"},
    "col_line_code": {"ko": "라인 코드", "en": "Line code"},
    "col_line_name": {"ko": "라인명", "en": "Line"},
    "col_item_code": {"ko": "품목 코드", "en": "Item code"},
    "col_item_name": {"ko": "품목명", "en": "Item"},
    "col_work_order": {"ko": "작업지시", "en": "Work order"},
    "col_lot_no": {"ko": "로트 번호", "en": "Lot no."},
    "col_plan_qty": {"ko": "계획", "en": "Plan"},
    "col_good_qty": {"ko": "양품", "en": "Good"},
    "col_defect_qty": {"ko": "불량", "en": "Defects"},
    "col_run_minutes": {"ko": "가동(분)", "en": "Run (min)"},
    "col_downtime_minutes": {"ko": "비가동(분)", "en": "Downtime (min)"},
    "col_updated_at": {"ko": "ERP 수정 시각", "en": "Updated in ERP"},
    # states
    "no_db_title": {"ko": "아직 데이터베이스가 없습니다", "en": "No database yet"},
    "no_db_body": {
        "ko": "ERP의 첫 내보내기를 기다리는 중입니다: {path}\n\n"
              "파일이 생기면 허브가 알아서 점검하고 이 화면에 데이터가 나타납니다.",
        "en": "Waiting for the ERP's first export to {path}\n\n"
              "When the file arrives the hub checks it and the data appears here by itself.",
    },
    "updating_as_of": {
        "ko": "ERP 내보내기 진행 중입니다. {when} 기준 데이터를 보여 줍니다.",
        "en": "ERP export in progress, showing data as of {when}.",
    },
    "held_back_as_of": {
        "ko": "최신 ERP 내보내기가 검증을 통과하지 못해 보류되었습니다: {reason}\n\n"
              "{when} 기준의 마지막 정상 데이터를 보여 줍니다.",
        "en": "The latest ERP export failed verification and was held back: {reason}\n\n"
              "Showing the last good data, as of {when}.",
    },
    "updating_no_data": {
        "ko": "ERP 내보내기 진행 중입니다. 끝나면 이 화면에 데이터가 나타납니다.",
        "en": "ERP export in progress. The data appears here when it has finished.",
    },
    "unreadable_title": {
        "ko": "데이터베이스를 읽을 수 없습니다", "en": "The database cannot be read",
    },
    "unreadable_body": {
        "ko": "{reason}\n\n허브는 계속 감시하며, 정상 파일이 들어오면 바로 데이터를 보여 줍니다.",
        "en": "{reason}\n\nThe hub keeps watching and shows the data as soon as a good "
              "export arrives.",
    },
    "config_error_title": {"ko": "설정 오류", "en": "Configuration error"},
    "new_data": {"ko": "새 데이터가 들어왔습니다.", "en": "New data has arrived."},
    # DB Auto-Management panel
    "panel_title": {"ko": "DB 자동 관리", "en": "DB Auto-Management"},
    "hub_state": {"ko": "허브 상태", "en": "Hub state"},
    "last_db_update": {"ko": "최근 DB 업데이트", "en": "Last DB Update"},
    "last_check": {"ko": "최근 인덱스 점검", "en": "Last Index Check"},
    "next_check": {"ko": "다음 점검", "en": "Next Check"},
    "auto_mode": {"ko": "자동 모드", "en": "Auto Mode"},
    "run_check": {"ko": "지금 점검", "en": "Run Check Now"},
    "check_requested": {"ko": "점검을 요청했습니다.", "en": "Check requested."},
    "published": {"ko": "제공 중인 데이터", "en": "Data served"},
    "published_line": {"ko": "{when} 기준, {rows}건", "en": "as of {when}, {rows} records"},
    "held_back": {"ko": "최신 내보내기 보류됨", "en": "Latest export held back"},
    "publish_anyway": {"ko": "그래도 게시", "en": "Publish anyway"},
    "overdue": {"ko": "ERP 내보내기 지연", "en": "ERP export overdue"},
    "stale_data": {"ko": "데이터가 오래됨", "en": "The data is old"},
    "publish_requested": {"ko": "보류된 내보내기를 게시했습니다.",
                          "en": "The held-back export was published."},
    "recent_events": {"ko": "최근 이벤트", "en": "Recent events"},
    "never": {"ko": "없음", "en": "never"},
    "result_ok": {"ko": "정상", "en": "OK"},
    "result_healed": {"ko": "복구함", "en": "healed"},
    "result_failed": {"ko": "실패", "en": "failed"},
    "healed_list": {"ko": "복구한 인덱스: {names}", "en": "Healed: {names}"},
    "dashboard_server": {"ko": "대시보드 서버", "en": "Dashboard server"},
    "server_line": {"ko": "{state} · 재시작 {n}회", "en": "{state} · {n} restarts"},
    "server_starting": {"ko": "시작 중", "en": "starting"},
    "server_running": {"ko": "실행 중", "en": "running"},
    "server_restarting": {"ko": "재시작 대기", "en": "restarting"},
    "server_stopped": {"ko": "중지됨", "en": "stopped"},
    "server_failed": {"ko": "실패", "en": "failed"},
    "server_gave_up": {"ko": "재시작 포기", "en": "gave up"},
    "server_disabled": {"ko": "꺼짐", "en": "disabled"},
    "api_down": {
        "ko": "허브 API가 응답하지 않습니다 ({url}): {error}",
        "en": "The hub's API is not answering ({url}): {error}",
    },
    "api_disabled": {
        "ko": "허브 API가 설정에서 꺼져 있어 상태를 볼 수 없습니다 (api.enabled = false).",
        "en": "The hub's API is turned off in the config (api.enabled = false).",
    },
    "api_refused": {
        "ko": "허브가 요청을 거절했습니다: {error}",
        "en": "The hub refused the request: {error}",
    },
    "on": {"ko": "켜짐", "en": "on"},
    "off": {"ko": "꺼짐", "en": "off"},
    "control_refused": {
        "ko": "이 화면에서는 허브를 제어할 수 없습니다. 먼저 제어 토큰을 입력하세요.",
        "en": "Not allowed from this page: enter the control token first.",
    },
    # who may control the hub (dashboard.access)
    "viewer_read_only": {
        "ko": "{address}에서 보는 중: 읽기 전용입니다. 허브 제어는 허브 PC에서, 또는 제어 "
              "토큰을 입력한 뒤에 할 수 있습니다.",
        "en": "Viewing from {address}: read-only. The hub is controlled on its own PC, or "
              "here after entering the control token.",
    },
    "controls_local_only": {
        "ko": "토큰이 설정되지 않아 허브 PC에서만 제어할 수 있습니다.",
        "en": "No token is set, so only the hub's PC can control it.",
    },
    "controls_unlocked": {
        "ko": "{address}: 이 세션에서 제어가 허용되었습니다.",
        "en": "{address}: controls unlocked for this session.",
    },
    "token_label": {"ko": "제어 토큰", "en": "Control token"},
    "unlock_controls": {"ko": "제어 잠금 해제", "en": "Unlock controls"},
    "lock_controls": {"ko": "제어 잠그기", "en": "Lock controls"},
    "token_wrong": {
        "ko": "토큰이 틀렸습니다. {seconds}초 후에 다시 시도할 수 있습니다.",
        "en": "Wrong token. You can try again in {seconds} s.",
    },
    "try_later": {
        "ko": "너무 빨리 다시 시도했습니다. {seconds}초 후에 다시 시도하세요.",
        "en": "Too soon after a wrong try: wait {seconds} s and try again.",
    },
    "password_title": {
        "ko": "이 대시보드는 비밀번호로 보호됩니다", "en": "This dashboard needs a password",
    },
    "password_label": {"ko": "비밀번호", "en": "Password"},
    "password_submit": {"ko": "열기", "en": "Open"},
    "password_wrong": {
        "ko": "비밀번호가 틀렸습니다. {seconds}초 후에 다시 시도할 수 있습니다.",
        "en": "Wrong password. You can try again in {seconds} s.",
    },
    "last_known": {
        "ko": "마지막으로 저장된 상태 (허브 꺼짐)",
        "en": "Last saved state (hub not running)",
    },
}, base=SHARED)

_EVENT_LABELS = Texts({
    "db_change_detected": {"ko": "DB 변경 감지", "en": "DB change detected"},
    "db_settled": {"ko": "DB 쓰기 완료", "en": "DB write finished"},
    "db_missing": {"ko": "DB 파일 없음", "en": "DB file missing"},
    "db_unreadable": {"ko": "DB 읽기 불가", "en": "DB unreadable"},
    "check_ok": {"ko": "점검 정상", "en": "Check OK"},
    "indexes_healed": {"ko": "인덱스 복구", "en": "Indexes healed"},
    "heal_failed": {"ko": "복구 실패", "en": "Heal failed"},
    "snapshot_published": {"ko": "새 데이터 게시", "en": "New data published"},
    "export_overdue": {"ko": "내보내기 지연", "en": "Export overdue"},
    "export_resumed": {"ko": "내보내기 재개", "en": "Exports resumed"},
    "export_rejected": {"ko": "내보내기 보류", "en": "Export held back"},
    "publish_failed": {"ko": "게시 실패", "en": "Publishing failed"},
    "server_started": {"ko": "서버 시작", "en": "Server started"},
    "server_crashed": {"ko": "서버 중단", "en": "Server crashed"},
    "server_gave_up": {"ko": "서버 재시작 포기", "en": "Server gave up"},
    "auto_mode_changed": {"ko": "자동 모드 변경", "en": "Auto mode changed"},
}, base=SHARED)

tr = LABELS


def event_label(name: str, lang: Language) -> str:
    """The event kind ``name`` for people; an unknown kind (from a newer hub) as it is."""
    return _EVENT_LABELS(name, lang) if name in _EVENT_LABELS else name


def pick_language(
    url_lang: str | None, configured: str, browser_locale: str | None
) -> Language:
    """The page language: the URL's choice, else the config's, else the browser's."""
    for choice in (url_lang, configured):
        if choice in LANGUAGES:
            return choice  # type: ignore[return-value]
    if browser_locale:
        primary = browser_locale.replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES:
            return primary  # type: ignore[return-value]
    return DEFAULT_LANG


# --- numbers and times -------------------------------------------------------------------


def fmt_int(value: float | int | None) -> str:
    """A whole number with thousands separators; '-' for no value."""
    return "-" if value is None else f"{round(value):,}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:,.{digits}f}%"


def fmt_hours(minutes: float | None, lang: Language) -> str:
    if minutes is None:
        return "-"
    return tr("hours", lang, value=f"{minutes / 60:,.1f}")


def fmt_time(moment: datetime | None, lang: Language, tz: tzinfo | None = None) -> str:
    """A moment in the viewer's (or this computer's) time zone; 'never' for None."""
    if moment is None:
        return tr("never", lang)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def delta_text(current: float | None, previous: float | None, *, kind: str, lang: Language,
               digits: int = 1) -> str | None:
    """The change against the previous period as st.metric shows it, or None.

    ``kind``: 'int' (thousands), 'pct' (percentage points) or 'hours' (from minutes).
    """
    if current is None or previous is None:
        return None
    diff = current - previous
    if kind == "pct":
        return f"{diff * 100:+,.{digits}f}" + ("%p" if lang == "ko" else " pp")
    if kind == "hours":
        return tr("hours", lang, value=f"{diff / 60:+,.1f}")
    return f"{round(diff):+,}"


def labels_complete() -> list[str]:
    """Keys of the page's tables missing a language (a test keeps this empty)."""
    return LABELS.incomplete() + _EVENT_LABELS.incomplete()
