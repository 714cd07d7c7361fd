"""Finding, reading and validating ``pdh.toml``, with the command line's overrides on top."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, ValidationError

from core.config.model import APP_AUTHOR, APP_NAME, Config
from core.paths import absolute

CONFIG_FILENAME = "pdh.toml"
ENV_CONFIG = "PDH_CONFIG"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message says where and why."""



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
    """``config`` with its relative paths made absolute against ``base`` (a copy)."""

    def resolve(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p)

    update: dict[str, Any] = {
        "database": config.database.model_copy(update={"path": resolve(config.database.path)})
    }
    for name in ("log", "state", "store"):
        section = getattr(config, name)
        if section.dir is not None:
            update[name] = section.model_copy(update={"dir": resolve(section.dir)})
    return config.model_copy(update=update)


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
