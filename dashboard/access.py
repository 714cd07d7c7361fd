"""The page's side of :mod:`dashboard.visitors`: this session's viewer, the page password,
and the control token form.

The viewer is decided in the script run from the session's connection (its TCP peer,
which Streamlit's server keeps from the WebSocket handshake) on every call, so a control
callback asks at the moment it acts: a widget message forged by a browser that was never
shown the controls, or shown them in another session, changes nothing.
Grants live in this session's state only (a reload asks again); wrong tries are
throttled per address for the whole process.
"""

from __future__ import annotations

import logging
import math

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.config import Config
from core.net import secret_matches
from core.words import Language
from dashboard.i18n import tr
from dashboard.visitors import Throttle, Viewer, control_token, viewer_of

log = logging.getLogger(__name__)

GRANT_KEY = "_pdh_control_grant"  # the address a control token was entered from
PAGE_KEY = "_pdh_page_open"  # the address the page password was entered from
NOTE_KEY = "_pdh_access_note"  # (kind, label key, values) under the forms
TOKEN_INPUT = "control_token"
PASSWORD_INPUT = "page_password"
FORWARDED_FOR = "X-Forwarded-For"


def _peer() -> str | None:
    """The TCP peer of this session's connection (None where there is none to ask)."""
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    try:
        client = runtime.get_instance().get_client(ctx.session_id)
    except (AttributeError, RuntimeError):  # another Streamlit: unknown, so remote
        return None
    # st.context.ip_address hides loopback as None; the raw peer is what we need.
    remote_ip = getattr(getattr(client, "client_context", None), "remote_ip", None)
    return remote_ip if isinstance(remote_ip, str) else None


def _forwarded_for() -> list[str]:
    try:
        return st.context.headers.get_all(FORWARDED_FOR)
    except (AttributeError, RuntimeError):
        return []


@st.cache_resource(show_spinner=False)
def _throttle() -> Throttle:
    return Throttle()


@st.cache_resource(show_spinner=False)
def _warned() -> set[str]:
    return set()


def viewer(config: Config) -> Viewer:
    """This session's viewer, from its connection, now."""
    peer, forwarded = _peer(), _forwarded_for()
    seen = viewer_of(config, peer, forwarded)
    if forwarded and seen.local and not seen.via_proxy:
        warned = _warned()
        if "forwarded" not in warned:
            warned.add("forwarded")
            log.warning("a viewer on %s sent X-Forwarded-For %s, which is ignored: if a "
                        "reverse proxy on this computer forwards other people, list it in "
                        "[dashboard] trusted_proxies, or they count as local", peer,
                        ", ".join(forwarded))
    return seen


def may_control(config: Config) -> bool:
    """Whether this session may use the hub's controls, decided now."""
    seen = viewer(config)
    if seen.local:
        return True
    grant = st.session_state.get(GRANT_KEY)
    return seen.address is not None and grant == seen.address and bool(control_token(config))


def refused(config: Config, action: str) -> None:
    """Log a control that was asked for without the right to it."""
    seen = viewer(config)
    log.warning("dashboard control '%s' refused: viewer %s (peer %s) is not on this "
                "computer and has not entered the control token", action, seen.shown,
                seen.peer or "?")


def _note(kind: str, key: str, **values: object) -> None:
    st.session_state[NOTE_KEY] = (kind, key, values)


def _show_note(lang: Language, keys: tuple[str, ...]) -> None:
    note = st.session_state.get(NOTE_KEY)
    if note and note[1] in keys:
        kind, key, values = note
        (st.success if kind == "ok" else st.error)(tr(key, lang, **values))


def _try(config: Config, purpose: str, given: str, expected: str) -> bool:
    """Check a token or password from this viewer, with the back-off; notes the outcome."""
    seen = viewer(config)
    key = (purpose, seen.address or seen.peer or "?")
    throttle = _throttle()
    wait = throttle.wait(key)
    if wait > 0:
        _note("error", "try_later", seconds=math.ceil(wait))
        return False
    if not secret_matches(given, expected):
        delay = throttle.failed(key)
        log.warning("wrong %s entered on the dashboard by %s (next try in %g s)", purpose,
                    seen.shown, delay)
        _note("error", f"{purpose}_wrong", seconds=f"{delay:g}")
        return False
    throttle.succeeded(key)
    return True


# --- the page password ------------------------------------------------------------------


def page_open(config: Config, lang: Language) -> bool:
    """True when the page may be drawn for this viewer; else the password form is drawn
    (nothing else, no data) and the caller stops."""
    password = config.dashboard.page_password()
    if not password:
        return True
    seen = viewer(config)
    if seen.local or (seen.address is not None and st.session_state.get(PAGE_KEY) == seen.address):
        return True
    st.subheader(tr("password_title", lang))
    with st.form("page_password_form", clear_on_submit=True):
        st.text_input(tr("password_label", lang), type="password", key=PASSWORD_INPUT)
        st.form_submit_button(tr("password_submit", lang), on_click=_submit_password,
                              args=(config,), type="primary")
    _show_note(lang, ("password_wrong", "try_later"))
    return False


def _submit_password(config: Config) -> None:
    given = str(st.session_state.get(PASSWORD_INPUT) or "")
    if _try(config, "password", given, config.dashboard.page_password()):
        st.session_state[PAGE_KEY] = viewer(config).address
        st.session_state.pop(NOTE_KEY, None)


# --- the control token ------------------------------------------------------------------


def control_access(config: Config, lang: Language) -> None:
    """Under the panel, for a viewer on another computer: read-only and why, and the
    form for the control token (or the button that locks the controls again)."""
    seen = viewer(config)
    if seen.local:
        return
    if may_control(config):
        st.caption(tr("controls_unlocked", lang, address=seen.shown))
        st.button(tr("lock_controls", lang), key="lock_controls", on_click=_lock)
        return
    st.caption(tr("viewer_read_only", lang, address=seen.shown))
    if not control_token(config):
        st.caption(tr("controls_local_only", lang))
        return
    if seen.address is None:
        return  # an unknown viewer cannot be told apart from the next one
    with st.form("control_token_form", clear_on_submit=True):
        st.text_input(tr("token_label", lang), type="password", key=TOKEN_INPUT)
        st.form_submit_button(tr("unlock_controls", lang), on_click=_submit_token,
                              args=(config,))
    _show_note(lang, ("token_wrong", "try_later"))


def _submit_token(config: Config) -> None:
    given = str(st.session_state.get(TOKEN_INPUT) or "")
    seen = viewer(config)
    if seen.address is not None and _try(config, "token", given, control_token(config)):
        st.session_state[GRANT_KEY] = seen.address
        st.session_state.pop(NOTE_KEY, None)
        log.warning("dashboard controls unlocked with the token by %s", seen.shown)


def _lock() -> None:
    st.session_state.pop(GRANT_KEY, None)
    st.session_state.pop(NOTE_KEY, None)
