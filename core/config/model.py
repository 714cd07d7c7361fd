"""The configuration's typed model: one section a table of ``pdh.toml``, and :class:`Config`."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from core.paths import database_folder

APP_NAME = "pdh"
APP_AUTHOR = "ProductionDataHub"

# The one port range of the servers the hub runs (``pdh api``, ``pdh dashboard``, their
# ``--port``): 0 asks for any free port.
ServerPort = Annotated[int, Field(ge=0, le=65535)]

# A folder that may be left out or given as "" (both: the platform's default).
OptionalDir = Annotated[Path | None, BeforeValidator(lambda v: None if v == "" else v)]

_IDENT_HELP = "letters, digits and _ only, not starting with a digit"


class _Section(BaseModel):
    """A table of the file. Frozen: a loaded config is never changed; a variant is made
    with ``model_copy(update=...)`` or, from the command line, load-time overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    port: ServerPort = 8000
    token: str = ""
    cors_origins: list[str] = Field(default_factory=list)
    # Threads that run /records reads. One by default: a read that returns many rows
    # hands the GIL over at every row, and two such reads in one process at once run
    # slower together than one after the other (docs/benchmarks.md, "The records lane").
    record_readers: int = Field(1, ge=1, le=32, description="threads for /records reads")
    # Processes that serve ``pdh api`` (the API alone), accepting on one socket: one
    # process has one GIL, so a second core serves only with a second process (the
    # hub's own API is one process).
    processes: int = Field(1, ge=1, le=32, description="processes serving pdh api")
    bind_retry: float = Field(5.0, gt=0, description="s before a busy port is tried "
                              "again, doubling up to 60 s")


class DashboardConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: ServerPort = 8501
    start_timeout: float = Field(60.0, gt=0, description="s to wait for /_stcore/health")
    restart_backoff: float = Field(1.0, gt=0, description="s, first restart delay, doubling")
    restart_backoff_max: float = Field(60.0, gt=0)
    stable_after: float = Field(60.0, gt=0, description="s up before the backoff resets")
    max_restarts: int = Field(5, ge=0, description="crashes in a row before giving up")
    refresh_interval: float = Field(5.0, gt=0, description="s, status panel refresh")
    # Who may do what on the page (see dashboard/visitors.py): viewers connecting from
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
    status_poll_interval: float = Field(
        2.0, gt=0, description="s; a tray attached to a headless hub polls its API")


class LogConfig(_Section):
    dir: OptionalDir = None
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class StateConfig(_Section):
    dir: OptionalDir = None


class StoreConfig(_Section):
    """Where the hub keeps the snapshots it publishes to readers."""

    dir: OptionalDir = None
    keep: int = Field(2, ge=1, description="published snapshots kept (current included)")


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
    # Each database has folders of its own (named by :func:`core.paths.database_folder`),
    # so two hubs for two databases on one PC share no store, state, event log or log;
    # an explicit ``[store] dir`` / ``[state] dir`` / ``[log] dir`` wins.

    @property
    def db_path(self) -> Path:
        return self.database.path

    @property
    def db_folder(self) -> str:
        """This database's folder name under each of the platform's app folders."""
        return database_folder(self.database.path)

    @property
    def log_dir(self) -> Path:
        return self.log.dir or _app_dir(platformdirs.user_log_dir) / self.db_folder

    @property
    def state_dir(self) -> Path:
        return self.state.dir or _app_dir(platformdirs.user_state_dir) / self.db_folder

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def store_dir(self) -> Path:
        return self.store.dir or _app_dir(platformdirs.user_data_dir) / self.db_folder / "snapshots"

    @property
    def events_file(self) -> Path:
        return self.log_dir / "events.jsonl"


def _app_dir(kind: Callable[[str, str], str]) -> Path:
    return Path(kind(APP_NAME, APP_AUTHOR))


def lock_dir() -> Path:
    """Where the one-hub-per-database locks live: the user's own, whatever a config says,
    so two configs for one database meet at one lock."""
    return _app_dir(platformdirs.user_state_dir) / "locks"


def legacy_dirs() -> tuple[Path, Path, Path]:
    """The default (store, state, log) folders of releases before per-database folders:
    one flat set shared by every database (see :mod:`core.layout`)."""
    return (_app_dir(platformdirs.user_data_dir) / "snapshots",
            _app_dir(platformdirs.user_state_dir),
            _app_dir(platformdirs.user_log_dir))
