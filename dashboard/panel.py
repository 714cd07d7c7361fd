"""The DB Auto-Management panel: what the hub is doing, and its controls (for the viewers
:mod:`dashboard.access` allows them to).

A Streamlit fragment that refreshes itself every ``dashboard.refresh_interval`` seconds
from the hub's API. When the data the page shows is no longer the file's (a new export
was healed), it reruns the whole page, so nobody has to press reload.
"""

from __future__ import annotations

import time
from datetime import datetime, tzinfo
from typing import Any

import streamlit as st

from core.config import Config
from core.hubapi import ApiDown, ApiRefused, HubApi, HubApiError
from core.state import CheckResult, StatusSnapshot, status_from_disk
from core.status_text import status_line
from core.words import STATE_COLOURS, Language, state_label
from dashboard import access, data
from dashboard.i18n import event_label, fmt_int, fmt_time, tr
from dashboard.settings import api_base_url

STATUS_KEY = "_hub_status"  # the page's fetch, reused by the panel's first run
MESSAGE_KEY = "_panel_message"
AUTO_KEY = "auto_mode_toggle"
EVENTS_SHOWN = 6
MESSAGE_SECONDS = 8.0
_MESSAGE_LABELS = ("check_requested", "publish_requested", "control_refused")


def api_client(config: Config) -> HubApi | None:
    if not config.api.enabled:
        return None
    return HubApi(api_base_url(config), config.api.token)


def fetch_status(config: Config) -> tuple[StatusSnapshot | None, str | None]:
    """The hub's status, or None and why not (API off or down)."""
    api = api_client(config)
    if api is None:
        return None, "disabled"
    try:
        return api.status(), None
    except HubApiError as exc:
        return None, str(exc)


def render(config: Config, lang: Language, tz: tzinfo | None, seen: data.Seen) -> None:
    """The panel, as a self-refreshing fragment; ``seen`` is what the page was drawn from."""
    fragment = st.fragment(_panel, run_every=config.dashboard.refresh_interval)
    fragment(config, lang, tz, seen)
    access.control_access(config, lang)  # outside the fragment: a refresh never eats a key


def _panel(config: Config, lang: Language, tz: tzinfo | None, seen: data.Seen) -> None:
    st.subheader(tr("panel_title", lang))
    fresh = st.session_state.pop(STATUS_KEY, None)
    status, problem = fresh if fresh is not None else fetch_status(config)
    api = api_client(config)
    if status is None or api is None:
        if problem == "disabled":
            st.info(tr("api_disabled", lang))
        else:
            st.error(tr("api_down", lang, url=api.url if api else "-", error=problem))
        _last_known(config, lang, tz)
    else:
        _status(status, api, config, lang, tz)
    if data.observe(config, status) != seen:
        # New data (or the update finished) since the page was drawn: draw it again.
        st.rerun(scope="app")


def _status(status: StatusSnapshot, api: HubApi, config: Config, lang: Language,
            tz: tzinfo | None) -> None:
    colour = STATE_COLOURS[status.state].name
    st.markdown(f"{tr('hub_state', lang)}: :{colour}-badge[{state_label(status.state, lang)}]")
    st.caption(status_line(status, lang))
    st.markdown(f"**{tr('last_db_update', lang)}**  \n{fmt_time(status.last_db_update, lang, tz)}")
    st.markdown(f"**{tr('last_check', lang)}**  \n{_check_text(status.last_check, lang, tz)}")
    st.markdown(f"**{tr('next_check', lang)}**  \n{fmt_time(status.next_check, lang, tz)}")
    # The controls are drawn only for a viewer who may use them (see dashboard.access),
    # and each callback asks again when it runs: hiding is for the eye, the check is not.
    control = access.may_control(config)
    if control:
        st.session_state[AUTO_KEY] = status.auto_mode  # the hub's word, not the widget's
        st.toggle(tr("auto_mode", lang), key=AUTO_KEY, on_change=_toggle_auto,
                  args=(config, api))
        st.button(tr("run_check", lang), key="run_check", on_click=_check_now,
                  args=(config, api), type="primary")
    else:
        st.markdown(f"**{tr('auto_mode', lang)}**  \n"
                    f"{tr('on' if status.auto_mode else 'off', lang)}")
    published, held = status.published, status.held_back
    st.markdown(f"**{tr('published', lang)}**  \n" + (
        tr("published_line", lang, when=fmt_time(published.as_of, lang, tz),
           rows=fmt_int(published.rows)) if published else tr("never", lang)))
    fresh = status.freshness
    if fresh.problem:
        st.warning(f"**{tr(fresh.state, lang)}**  \n{fresh.message}", icon=":material/schedule:")
    if held is not None:
        st.warning(f"**{tr('held_back', lang)}** ({fmt_time(held.at, lang, tz)})  \n"
                   f"{held.reason}", icon=":material/block:")
        if control:
            st.button(tr("publish_anyway", lang), key="publish_anyway",
                      on_click=_publish_anyway, args=(config, api),
                      disabled=not held.forceable)
    message = st.session_state.get(MESSAGE_KEY)
    if message:
        kind, text, at = message
        # Kept for a few refreshes, so a person (and a slow browser) can read it.
        if time.monotonic() - at > MESSAGE_SECONDS:
            del st.session_state[MESSAGE_KEY]
        else:
            (st.success if kind == "ok" else st.error)(
                tr(text, lang) if text in _MESSAGE_LABELS else text
            )
    server = status.servers.get("dashboard")
    if server is not None:
        line = tr("server_line", lang, state=tr(f"server_{server.state}", lang),
                  n=server.restarts)
        st.caption(f"{tr('dashboard_server', lang)}: {line}")
    if status.recent_events:
        st.markdown(f"**{tr('recent_events', lang)}**")
        lines = [_event_line(e, lang, tz) for e in reversed(status.recent_events[-EVENTS_SHOWN:])]
        st.markdown("\n".join(f"- {line}" for line in lines))


def _check_text(check: CheckResult | None, lang: Language, tz: tzinfo | None) -> str:
    if check is None:
        return tr("never", lang)
    text = f"{fmt_time(check.at, lang, tz)} · {tr('result_' + check.result, lang)}"
    if check.healed:
        text += "  \n" + tr("healed_list", lang, names=", ".join(check.healed))
    if check.error:
        text += f"  \n:red[{check.error}]"
    return text


def _event_line(event: dict[str, Any], lang: Language, tz: tzinfo | None) -> str:
    try:
        when = fmt_time(datetime.fromisoformat(str(event.get("time"))), lang, tz)[11:]
    except ValueError:
        when = "--:--:--"
    detail = event.get("error") or ", ".join(event.get("healed") or []) or ""
    name = event_label(str(event.get("event", "")), lang)
    return f"`{when}` {name}" + (f" — {detail}" if detail else "")


def _last_known(config: Config, lang: Language, tz: tzinfo | None) -> None:
    """What the hub saved last time, when it cannot be asked."""
    saved = status_from_disk(config)
    if not saved.get("last_check") and not saved.get("last_db_update"):
        return
    st.caption(tr("last_known", lang))
    update = saved.get("last_db_update")
    st.markdown(f"**{tr('last_db_update', lang)}**  \n"
                f"{fmt_time(datetime.fromisoformat(update) if update else None, lang, tz)}")
    check = saved.get("last_check")
    st.markdown(f"**{tr('last_check', lang)}**  \n"
                f"{_check_text(CheckResult.model_validate(check) if check else None, lang, tz)}")


def _allowed(config: Config, action: str) -> bool:
    """Asked inside every control callback, at the moment it runs (a forged or stale
    widget message reaches the callback without the page having drawn the control)."""
    if access.may_control(config):
        return True
    access.refused(config, action)
    st.session_state[MESSAGE_KEY] = ("error", "control_refused", time.monotonic())
    return False


def _check_now(config: Config, api: HubApi) -> None:
    if not _allowed(config, "check now"):
        return
    try:
        api.check_now()
    except ApiRefused as exc:
        st.session_state[MESSAGE_KEY] = ("error", exc.reason, time.monotonic())
    except ApiDown as exc:
        st.session_state[MESSAGE_KEY] = ("error", str(exc), time.monotonic())
    else:
        st.session_state[MESSAGE_KEY] = ("ok", "check_requested", time.monotonic())


def _publish_anyway(config: Config, api: HubApi) -> None:
    if not _allowed(config, "publish anyway"):
        return
    try:
        api.publish_anyway()
    except (ApiRefused, ApiDown) as exc:
        text = exc.reason if isinstance(exc, ApiRefused) else str(exc)
        st.session_state[MESSAGE_KEY] = ("error", text, time.monotonic())
    else:
        st.session_state[MESSAGE_KEY] = ("ok", "publish_requested", time.monotonic())


def _toggle_auto(config: Config, api: HubApi) -> None:
    if not _allowed(config, "auto mode"):
        return
    try:
        api.set_auto_mode(bool(st.session_state[AUTO_KEY]))
    except HubApiError as exc:
        st.session_state[MESSAGE_KEY] = ("error", str(exc), time.monotonic())
