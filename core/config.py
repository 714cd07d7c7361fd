"""The hub's configuration: one typed model, loaded once from TOML and passed in.

Discovery order: ``--config FILE``, else ``$PDH_CONFIG``, else ``./pdh.toml``, else
``pdh.toml`` in the user config dir (platformdirs). Every key is optional. An unknown
key or a bad value raises :class:`ConfigError`, whose message names the file, the key
and what is allowed. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.paths import absolute

APP_NAME = "pdh"
APP_AUTHOR = "ProductionDataHub"
CONFIG_FILENAME = "pdh.toml"
ENV_CONFIG = "PDH_CONFIG"

_IDENT_HELP = "letters, digits and _ only, not starting with a digit"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message says where and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _check_identifier(value: str) -> str:
    if not value.replace("_", "a").isalnum() or not value.isascii() or value[:1].isdigit():
        raise ValueError(f"{value!r} is not a plain SQL name ({_IDENT_HELP})")
    return value


class IndexSpec(_Section):
    """One secondary index the hub keeps alive on the ERP's file."""

    name: str
    table: str
    columns: list[str] = Field(min_length=1)

    @field_validator("name", "table")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return _check_identifier(value)

    @field_validator("columns")
    @classmethod
    def _plain_columns(cls, value: list[str]) -> list[str]:
        for column in value:
            _check_identifier(column)
        if len(set(value)) != len(value):
            raise ValueError("a column is listed twice")
        return value

    def create_sql(self) -> str:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        return f'CREATE INDEX IF NOT EXISTS "{self.name}" ON "{self.table}" ({cols})'


DEFAULT_INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("idx_records_work_date", "production_records", ("work_date",)),
    ("idx_records_item_date", "production_records", ("item_code", "work_date")),
    ("idx_records_line_date", "production_records", ("line_code", "work_date")),
    ("idx_records_lot_no", "production_records", ("lot_no",)),
    ("idx_defects_record_id", "defect_records", ("record_id",)),
)


def default_indexes() -> list[IndexSpec]:
    return [IndexSpec(name=n, table=t, columns=list(c)) for n, t, c in DEFAULT_INDEXES]


class DatabaseConfig(_Section):
    path: Path = Path("production_analysis.db")


class WatchConfig(_Section):
    auto_mode: bool = True
    check_interval: float = Field(3600.0, gt=0, description="s; periodic check with no event")
    settle_interval: float = Field(5.0, gt=0, description="s between looks")
    settle_checks: int = Field(3, ge=1, description="unchanged looks in a row = write done")
    force_polling: bool = False
    poll_interval: float = Field(2.0, gt=0, description="s, when polling")


class HealConfig(_Section):
    connect_timeout: float = Field(10.0, gt=0, description="s, SQLite busy timeout")
    retries: int = Field(3, ge=1, description="attempts per index on SQLITE_BUSY/LOCKED")
    retry_backoff: float = Field(1.0, ge=0, description="s, doubling after each busy attempt")
    analyze: bool = True
    repair_mismatched: bool = True
    in_place: bool = True  # also heal the ERP's own file (other tools read it too)
    indexes: list[IndexSpec] = Field(default_factory=default_indexes)

    @field_validator("indexes")
    @classmethod
    def _unique_names(cls, value: list[IndexSpec]) -> list[IndexSpec]:
        names = [spec.name for spec in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"index name(s) listed twice: {', '.join(dupes)}")
        return value


class ApiConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    token: str = ""
    cors_origins: list[str] = Field(default_factory=list)


class DashboardConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=0, le=65535)
    start_timeout: float = Field(60.0, gt=0, description="s to wait for /_stcore/health")
    restart_backoff: float = Field(1.0, gt=0, description="s, first restart delay, doubling")
    restart_backoff_max: float = Field(60.0, gt=0)
    stable_after: float = Field(60.0, gt=0, description="s up before the backoff resets")
    max_restarts: int = Field(5, ge=0, description="crashes in a row before giving up")
    refresh_interval: float = Field(5.0, gt=0, description="s, status panel refresh")
    # Who may do what on the page (see dashboard/viewer.py): viewers connecting from
    # ``local_addresses`` are on the hub's PC and get the controls; everyone else reads
    # only, until they enter ``admin_token`` (or ``[api] token`` when that is empty).
    local_addresses: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1"],
        description="addresses or networks that count as this computer",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For is believed",
    )
    admin_token: str = ""
    password_env: str = ""  # names the variable holding a password for the whole page

    @field_validator("local_addresses", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, "
                    "192.168.1.0/24, ::1)"
                ) from None
        return [entry.strip() for entry in value]

    @field_validator("password_env")
    @classmethod
    def _password_is_set(cls, value: str) -> str:
        if value and not os.environ.get(value):
            raise ValueError(
                f"the environment variable {value} is not set (it holds the page password)"
            )
        return value

    def page_password(self) -> str:
        """The password for the whole page ('' when none is asked)."""
        return os.environ.get(self.password_env, "") if self.password_env else ""


class UiConfig(_Section):
    language: Literal["auto", "ko", "en"] = "auto"
    notifications: bool = True


class LogConfig(_Section):
    dir: Path | None = None
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class StateConfig(_Section):
    dir: Path | None = None

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value


class StoreConfig(_Section):
    """Where the hub keeps the snapshots it publishes to readers."""

    dir: Path | None = None
    keep: int = Field(2, ge=1, description="published snapshots kept (current included)")

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value


class VerifyConfig(_Section):
    """What a copy of an export must pass before readers see it."""

    min_row_ratio: float = Field(
        0.5, ge=0, le=1,
        description="production_records rows against the last published; 0 turns it off",
    )


class FreshnessConfig(_Section):
    """When the ERP's exports are overdue, or the data in them is old."""

    expect_every: float = Field(0.0, ge=0, description="s between exports; 0: no expectation")
    grace: float | None = Field(None, ge=0, description="s; default a quarter of expect_every")
    max_data_age: float = Field(0.0, ge=0, description="s; newest work_date older: a warning")

    @property
    def overdue_after(self) -> float | None:
        """Seconds after the last publish when an export is overdue; None: no expectation."""
        if not self.expect_every:
            return None
        grace = self.expect_every / 4 if self.grace is None else self.grace
        return self.expect_every + grace


class WebhookConfig(_Section):
    """An HTTP endpoint that is sent a message for each alert (Teams, Slack, or JSON)."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    format: Literal["json", "teams", "slack"] = "json"
    timeout: float = Field(10.0, gt=0, description="s for one delivery attempt")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class EmailConfig(_Section):
    """SMTP delivery of alerts; the password may come from an environment variable."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username: str = ""
    password: str = ""
    password_env: str = ""
    from_: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    timeout: float = Field(10.0, gt=0)

    @field_validator("password_env")
    @classmethod
    def _env_is_set(cls, value: str) -> str:
        if value and not os.environ.get(value):
            raise ValueError(f"the environment variable {value} is not set")
        return value

    def secret(self) -> str:
        """The password to log in with (from ``password_env`` when given)."""
        return os.environ.get(self.password_env, "") if self.password_env else self.password


class AlertsConfig(_Section):
    """Messages for people who are not at the PC; each channel optional."""

    min_interval: float = Field(900.0, ge=0, description="s between alerts of one kind")
    problem_grace: float = Field(300.0, ge=0, description="s a missing/unreadable DB lasts")
    retries: int = Field(3, ge=1, description="delivery attempts per message and channel")
    retry_backoff: float = Field(5.0, ge=0, description="s before the second attempt, doubling")
    webhook: list[WebhookConfig] = Field(default_factory=list)
    email: EmailConfig | None = None


class DemoConfig(_Section):
    export_interval: float = Field(180.0, gt=0, description="s between simulated exports")
    mode: Literal["replace", "copy", "rebuild"] = "replace"
    rows: int = Field(50_000, ge=100)  # as many as `make run`'s demo database
    seconds: float = Field(3.0, ge=0, description="s one simulated export takes")


class Config(_Section):
    """The whole configuration. ``source`` is the file it came from, if any."""

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    heal: HealConfig = Field(default_factory=HealConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    ui: UiConfig = Field(default_factory=UiConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    freshness: FreshnessConfig = Field(default_factory=FreshnessConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)

    # Derived locations -------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.database.path

    @property
    def log_dir(self) -> Path:
        return self.log.dir or Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))

    @property
    def state_dir(self) -> Path:
        return self.state.dir or Path(platformdirs.user_state_dir(APP_NAME, APP_AUTHOR))

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def store_dir(self) -> Path:
        default = Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)) / "snapshots"
        return self.store.dir or default

    @property
    def events_file(self) -> Path:
        return self.log_dir / "events.jsonl"


class LoadedConfig(BaseModel):
    """A config together with the file it came from (None: built-in defaults)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    config: Config
    source: Path | None


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)) / CONFIG_FILENAME


def discover_config_file(explicit: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The file to load, by the contract's order; None means built-in defaults."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env)
    local = (cwd or Path.cwd()) / CONFIG_FILENAME
    if local.is_file():
        return local
    user = user_config_file()
    if user.is_file():
        return user
    return None


def _describe_error(source: str, err: Mapping[str, Any], model: type[BaseModel]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    key = _dotted(loc)
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{source}: unknown key '{key}'; allowed here: {', '.join(allowed)}"
    got = err.get("input")
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: key '{key}': {msg}{shown}"


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        models = (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel))
        nxt = next(models, None)
        if nxt is None:
            break
        current = nxt
    return sorted(getattr(current, "model_fields", {}))


def _resolve_paths(config: Config, base: Path) -> Config:
    def resolve(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p)

    config.database.path = resolve(config.database.path)
    if config.log.dir is not None:
        config.log.dir = resolve(config.log.dir)
    if config.state.dir is not None:
        config.state.dir = resolve(config.state.dir)
    if config.store.dir is not None:
        config.store.dir = resolve(config.store.dir)
    return config


@dataclass(frozen=True, slots=True)
class Override:
    """A value from the command line that wins over the file: ``key`` is dotted
    (``"dashboard.port"``), ``flag`` names it in error messages (``"--port"``)."""

    key: str
    value: Any
    flag: str


def _with_overrides(data: Mapping[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v
                              for k, v in data.items()}
    for item in overrides:
        section, _, key = item.key.partition(".")
        table = merged.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{item.flag}: [{section}] in the config file is not a table")
        table[key] = str(item.value) if isinstance(item.value, Path) else item.value
    return merged


def parse_config(data: Mapping[str, Any], *, source: str = "<config>", base: Path,
                 overrides: Sequence[Override] = ()) -> Config:
    """Validate a TOML-shaped mapping with the command line's ``overrides`` on top;
    relative paths resolve against ``base`` (an override's path is made absolute first)."""
    try:
        config = Config.model_validate(_with_overrides(data, overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _dotted([str(p) for p in first.get("loc", ())])
        for item in overrides:
            if item.key == key:
                msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
                raise ConfigError(f"{item.flag}: {msg} (got {item.value!r})") from None
        raise ConfigError(_describe_error(source, first, Config)) from None
    return _resolve_paths(config, base)


def load_config(
    explicit: Path | None = None, *, db_override: Path | None = None,
    overrides: Sequence[Override] = (), cwd: Path | None = None,
) -> LoadedConfig:
    """Find, read and validate the configuration, built once with the command line's
    ``overrides`` (``db_override`` is ``--db``) and never changed afterwards."""
    given = list(overrides)
    if db_override is not None:
        given.append(Override("database.path", absolute(db_override), "--db"))
    given = [Override(o.key, absolute(o.value), o.flag) if isinstance(o.value, Path) else o
             for o in given]
    source = discover_config_file(explicit, cwd)
    if source is None:
        config = parse_config({}, source="(defaults)", base=cwd or Path.cwd(), overrides=given)
        return LoadedConfig(config=config, source=None)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    config = parse_config(data, source=str(source), base=absolute(source).parent,
                          overrides=given)
    return LoadedConfig(config=config, source=source)
