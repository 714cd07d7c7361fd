"""Who counts as local, which X-Forwarded-For is believed, the back-off, the start-up
line, and the config keys behind them (no Streamlit here: dashboard.visitors is plain)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Config, ConfigError, parse_config
from core.net import secret_matches
from dashboard.visitors import (
    Networks,
    Throttle,
    control_token,
    exposure,
    identify,
    parse_address,
)

LOOPBACK = Networks(["127.0.0.0/8", "::1"])
ONLY_127_0_0_1 = Networks(["127.0.0.1"])
PROXIES = Networks(["10.0.0.2", "10.0.1.0/24"])


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("::ffff:127.0.0.1", "127.0.0.1"),
    ("[::1]:8501", "::1"), ("10.0.0.5:51234", "10.0.0.5"), ("fe80::1%eth0", "fe80::1"),
    (" 192.168.1.7 ", "192.168.1.7"), ("localhost", None), ("", None), (None, None),
    ("unknown", None), ("1.2.3", None),
])
def test_parse_address(text: str | None, parsed: str | None) -> None:
    addr = parse_address(text)
    assert (str(addr) if addr else None) == parsed


def test_local_is_the_tcp_peer_in_local_addresses() -> None:
    assert identify("127.0.0.1", [], local=LOOPBACK, proxies=PROXIES).local
    assert identify("::1", [], local=LOOPBACK, proxies=PROXIES).local
    assert identify("::ffff:127.0.0.1", [], local=LOOPBACK, proxies=PROXIES).local
    assert identify("127.0.0.2", [], local=LOOPBACK, proxies=PROXIES).local
    remote = identify("127.0.0.2", [], local=ONLY_127_0_0_1, proxies=PROXIES)
    assert not remote.local and remote.address == "127.0.0.2"
    assert not identify("192.168.1.7", [], local=LOOPBACK, proxies=PROXIES).local


def test_unknown_peer_is_remote() -> None:
    for peer in (None, "", "not-an-address"):
        viewer = identify(peer, [], local=LOOPBACK, proxies=PROXIES)
        assert not viewer.local and viewer.address is None


def test_forwarded_for_from_an_untrusted_peer_changes_nothing() -> None:
    for claim in (["127.0.0.1"], ["::1"], ["127.0.0.1, 127.0.0.1"], ["10.0.0.2"]):
        viewer = identify("192.168.1.7", claim, local=LOOPBACK, proxies=PROXIES)
        assert not viewer.local and viewer.address == "192.168.1.7"
    # ...and from a local one it does not make it remote either.
    viewer = identify("127.0.0.1", ["192.168.1.7"], local=LOOPBACK, proxies=PROXIES)
    assert viewer.local and viewer.address == "127.0.0.1"


def test_forwarded_for_from_a_trusted_proxy_is_read_from_the_right() -> None:
    def through(*values: str) -> tuple[str | None, bool]:
        viewer = identify("10.0.0.2", list(values), local=LOOPBACK, proxies=PROXIES)
        return viewer.address, viewer.local

    assert through("192.168.1.7") == ("192.168.1.7", False)
    assert identify("10.0.0.2", ["192.168.1.7"], local=LOOPBACK, proxies=PROXIES).via_proxy
    assert not identify("127.0.0.1", ["192.168.1.7"], local=LOOPBACK,
                        proxies=PROXIES).via_proxy
    assert through("127.0.0.1") == ("127.0.0.1", True)  # someone on the hub's PC
    # The client put "127.0.0.1" in front itself; the proxy appended what it saw.
    assert through("127.0.0.1, 192.168.1.7") == ("192.168.1.7", False)
    assert through("127.0.0.1", "192.168.1.7") == ("192.168.1.7", False)  # two headers
    # A chain of trusted proxies is skipped from the right.
    assert through("192.168.1.7, 10.0.1.9") == ("192.168.1.7", False)
    assert through("10.0.1.8, 10.0.1.9") == ("10.0.1.8", False)  # all proxies: leftmost
    # A proxy that does not say for whom, or says something that is not an address.
    assert through() == (None, False)
    assert through("") == (None, False)
    assert through("garbage, 192.168.1.7") == ("192.168.1.7", False)
    assert through("192.168.1.7, garbage") == (None, False)


def test_throttle_backs_off_doubling_and_clears_on_success() -> None:
    now = [100.0]
    throttle = Throttle(first=1.0, most=4.0, clock=lambda: now[0])
    key = ("token", "192.168.1.7")
    assert throttle.wait(key) == 0
    assert throttle.failed(key) == 1.0
    assert throttle.wait(key) == pytest.approx(1.0)
    assert throttle.wait(("token", "192.168.1.8")) == 0  # per address
    assert throttle.wait(("password", "192.168.1.7")) == 0  # and per purpose
    now[0] += 1.0
    assert throttle.wait(key) == 0
    assert [throttle.failed(key) for _ in range(3)] == [2.0, 4.0, 4.0]  # at most 4
    throttle.succeeded(key)
    assert throttle.wait(key) == 0 and throttle.failed(key) == 1.0


def test_secret_matches() -> None:
    assert secret_matches("s3cret-é", "s3cret-é")
    assert not secret_matches("s3cret", "s3cret ")
    assert not secret_matches("", "")  # no token set: nothing unlocks
    assert not secret_matches("x", "")


def test_control_token_is_admin_token_else_api_token() -> None:
    assert control_token(Config()) == ""
    assert control_token(Config.model_validate({"api": {"token": "a"}})) == "a"
    both = Config.model_validate({"api": {"token": "a"}, "dashboard": {"admin_token": "d"}})
    assert control_token(both) == "d"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "localhost.localdomain",
                                  "ip6-localhost", "::1", "[::1]", "0.0.0.0", "::",
                                  "192.168.0.10", "example.com"])
def test_the_api_and_the_dashboard_agree_on_what_is_this_computer(host: str) -> None:
    """One rule: a host the API would not start on without a token is one the dashboard
    says other computers can reach, and the other way round."""
    from api.security import startup_problem

    config = Config.model_validate({"api": {"host": host}, "dashboard": {"host": host}})
    assert (startup_problem(config.api) is None) == (exposure(config) is None), host


def test_exposure_line() -> None:
    assert exposure(Config()) is None  # 127.0.0.1
    assert exposure(Config.model_validate({"dashboard": {"host": "localhost"}})) is None
    assert exposure(Config.model_validate({"dashboard": {"host": "::1"}})) is None
    line = exposure(Config.model_validate({"dashboard": {"host": "0.0.0.0"}}))
    assert line is not None and "every interface" in line
    assert "reads the data with no password" in line
    assert "controls only on this computer (no token set)" in line
    line = exposure(Config.model_validate({
        "api": {"token": "tok-123"},
        "dashboard": {"host": "192.168.1.10", "trusted_proxies": ["192.168.1.2"]}}))
    assert line is not None and "192.168.1.10:8501" in line
    assert "remote-enabled with [api] token" in line and "192.168.1.2" in line
    assert "tok-123" not in line  # never the token itself


def test_exposure_names_the_password_variable_not_the_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDH_TEST_PW", "hunter22")
    line = exposure(Config.model_validate({"dashboard": {
        "host": "0.0.0.0", "password_env": "PDH_TEST_PW", "admin_token": "adm1n"}}))
    assert line is not None and "after the page password ($PDH_TEST_PW)" in line
    assert "admin_token" in line
    assert "hunter22" not in line and "adm1n" not in line


def test_config_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def load(**dashboard: object) -> Config:
        return parse_config({"dashboard": dashboard}, source="pdh.toml", base=tmp_path)

    cfg = load(local_addresses=["127.0.0.1", "192.168.1.10"],
               trusted_proxies=["10.0.0.0/8"])
    assert cfg.dashboard.local_addresses == ["127.0.0.1", "192.168.1.10"]
    with pytest.raises(ConfigError, match=r"dashboard\.trusted_proxies.*'proxy\.lan' is not "
                                          r"an IP address or network"):
        load(trusted_proxies=["proxy.lan"])
    with pytest.raises(ConfigError, match=r"dashboard\.password_env.*PDH_TEST_NO_SUCH_VAR "
                                          r"is not set"):
        load(password_env="PDH_TEST_NO_SUCH_VAR")
    monkeypatch.setenv("PDH_TEST_PW", "hunter22")
    assert load(password_env="PDH_TEST_PW").dashboard.page_password() == "hunter22"
    assert load().dashboard.page_password() == ""
