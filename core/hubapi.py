"""The one client of the hub's HTTP API (``/api/v1/hub/...``), for whoever talks to a hub
in another process: the dashboard, the tray attached to a headless hub, and ``pdh
check``/``publish``/``status``. Not part of the engine: no module of core imports it.

``GET /hub/status`` (a :class:`~core.state.StatusSnapshot`), ``POST /hub/check``,
``POST /hub/publish`` and ``PUT /hub/auto-mode``. Every call has a short timeout and
ignores proxy settings (``trust_env=False``: the hub is on this computer or the LAN): a
hub that does not answer becomes :class:`ApiDown`, which callers show as such, never as
a traceback.

    HubApiError
    ├── ApiDown       nothing answers, or it answered with something that is not the hub
    └── ApiRefused    the hub answered and said no (status code and its reason)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from core.state import StatusSnapshot

PREFIX = "/api/v1"
TIMEOUT_S = 2.0


class HubApiError(Exception):
    """Base of the hub API client's errors."""


class ApiDown(HubApiError):
    """The hub's API does not answer (or does not answer like the hub)."""


class ApiRefused(HubApiError):
    """The hub answered with an error status; the message carries its reason."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(f"HTTP {status_code}: {reason}")
        self.status_code = status_code
        self.reason = reason


_clients: dict[float, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(timeout: float) -> httpx.Client:
    """One pooled client per process (thread-safe): no new connection and no SSL setup
    on every status refresh of every open page."""
    with _clients_lock:
        client = _clients.get(timeout)
        if client is None:
            client = _clients[timeout] = httpx.Client(timeout=timeout, trust_env=False)
        return client


@dataclass(frozen=True)
class HubApi:
    """A small synchronous client of the hub's API (Streamlit scripts are sync)."""

    base_url: str
    token: str = ""
    timeout: float = TIMEOUT_S

    @property
    def url(self) -> str:
        return self.base_url + PREFIX

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, method: str, path: str, json: object | None = None) -> httpx.Response:
        try:
            response = _client(self.timeout).request(
                method, self.url + path, json=json, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise ApiDown(_short(exc)) from None
        if response.status_code >= 400:
            raise ApiRefused(response.status_code, _reason(response))
        return response

    def _status(self, method: str, path: str, json: object | None = None) -> StatusSnapshot:
        response = self._call(method, path, json)
        try:
            return StatusSnapshot.model_validate_json(response.content)
        except ValidationError:
            raise ApiDown(f"{self.url}{path} did not answer with the hub's status") from None

    def status(self) -> StatusSnapshot:
        return self._status("GET", "/hub/status")

    def check_now(self) -> StatusSnapshot:
        """Ask for a check; the hub's status as it took the request."""
        return self._status("POST", "/hub/check")

    def publish_anyway(self) -> StatusSnapshot:
        """Publish the held-back export (ApiRefused with the hub's reason if it cannot)."""
        return self._status("POST", "/hub/publish", {"force": True})

    def set_auto_mode(self, on: bool) -> None:
        self._call("PUT", "/hub/auto-mode", json={"auto_mode": on})


def _short(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer (timed out)"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is the hub running?)"
    return str(exc) or type(exc).__name__


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "reason", "error", "message"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:200]
