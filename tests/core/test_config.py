"""Config: discovery order, defaults from the seed, path resolution, every bad case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.main import main
from core.config import ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PDH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_seeds_numbers(tmp_path: Path) -> None:
    loaded = load_config(cwd=tmp_path / "nowhere")
    cfg = loaded.config
    assert loaded.source is None
    assert cfg.watch.check_interval == 3600
    assert (cfg.watch.settle_interval, cfg.watch.settle_checks) == (5.0, 3)
    assert (cfg.heal.connect_timeout, cfg.heal.retries) == (10.0, 3)
    assert cfg.heal.analyze and cfg.heal.repair_mismatched
    assert cfg.api.host == "127.0.0.1" and cfg.dashboard.host == "127.0.0.1"
    assert [(i.name, i.table, i.columns) for i in cfg.heal.indexes] == [
        ("idx_records_work_date", "production_records", ["work_date"]),
        ("idx_records_item_date", "production_records", ["item_code", "work_date"]),
        ("idx_records_line_date", "production_records", ["line_code", "work_date"]),
        ("idx_records_lot_no", "production_records", ["lot_no"]),
        ("idx_defects_record_id", "defect_records", ["record_id"]),
    ]


def test_defaults_match_the_erp_schema_comment() -> None:
    """The default spec is exactly the five indexes listed at the end of schema.sql."""
    import re

    from core.config import default_indexes

    schema_file = Path(__file__).resolve().parents[2] / "core" / "erp" / "erp_schema.sql"
    schema = schema_file.read_text("utf-8")
    listed = re.findall(r"--\s+(idx_\w+)\s+ON (\w+)\(([^)]*)\)", schema)
    expected = [(n, t, [c.strip() for c in cols.split(",")]) for n, t, cols in listed]
    assert [(i.name, i.table, i.columns) for i in default_indexes()] == expected


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = write(tmp_path / "xdg" / "pdh" / "pdh.toml", "[watch]\nsettle_checks = 4\n")
    assert load_config().source == user
    local = write(tmp_path / "pdh.toml", "[watch]\nsettle_checks = 5\n")
    assert load_config().source == local
    env = write(tmp_path / "env" / "e.toml", "[watch]\nsettle_checks = 6\n")
    monkeypatch.setenv("PDH_CONFIG", str(env))
    assert load_config().config.watch.settle_checks == 6
    explicit = write(tmp_path / "x" / "x.toml", "[watch]\nsettle_checks = 7\n")
    loaded = load_config(explicit)
    assert loaded.source == explicit and loaded.config.watch.settle_checks == 7


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg_file = write(
        tmp_path / "site" / "pdh.toml",
        '[database]\npath = "data/p.db"\n[log]\ndir = "logs"\n[state]\ndir = "st"\n',
    )
    cfg = load_config(cfg_file).config
    assert cfg.db_path == tmp_path / "site" / "data" / "p.db"
    assert cfg.log_dir == tmp_path / "site" / "logs"
    assert cfg.state_file == tmp_path / "site" / "st" / "state.json"
    assert cfg.events_file == tmp_path / "site" / "logs" / "events.jsonl"


def test_db_override(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "pdh.toml", '[database]\npath = "a.db"\n')
    cfg = load_config(cfg_file, db_override=Path("other/b.db")).config
    assert cfg.db_path == (tmp_path / "other" / "b.db").resolve()


def test_custom_index_spec(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "pdh.toml", """
[[heal.indexes]]
name = "idx_x"
table = "production_records"
columns = ["shift", "work_date"]
""")
    specs = load_config(cfg_file).config.heal.indexes
    assert [(s.name, s.columns) for s in specs] == [("idx_x", ["shift", "work_date"])]


BAD_CONFIGS = [
    ("[watch]\nsettle_intervall = 5\n",
     ["watch.settle_intervall", "unknown key", "settle_interval"]),
    ("[watch]\nsettle_checks = \"three\"\n", ["watch.settle_checks", "integer"]),
    ("[watch]\nsettle_interval = -1\n", ["watch.settle_interval", "greater than 0", "-1"]),
    ("[watch]\ncheck_interval = 0\n", ["watch.check_interval", "greater than 0"]),
    ("[[heal.indexes]]\nname = \"i\"\ntable = \"t\"\ncolumns = []\n",
     ["heal.indexes[0].columns", "at least 1"]),
    ("[[heal.indexes]]\nname = \"i; DROP\"\ntable = \"t\"\ncolumns = [\"a\"]\n",
     ["heal.indexes[0].name", "plain SQL name"]),
    ("[ui]\nlanguage = \"fr\"\n", ["ui.language", "'auto', 'ko' or 'en'"]),
    ("[api]\nport = 70000\n", ["api.port", "65535"]),
    ("[watch\nsettle_checks = 3\n", ["TOML syntax error"]),
    ("[bogus]\nx = 1\n", ["unknown key 'bogus'", "watch"]),
    ("[[alerts.webhook]]\nurl = \"ftp://x/y\"\n",
     ["alerts.webhook[0].url", "not an http:// or https:// URL"]),
    ("[alerts.email]\nhost = \"smtp\"\nfrom = \"a@b.c\"\n", ["alerts.email.to", "required"]),
    ("[alerts.email]\nhost = \"smtp\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\n"
     "password_env = \"PDH_TEST_UNSET_PASSWORD\"\n",
     ["alerts.email.password_env", "PDH_TEST_UNSET_PASSWORD is not set"]),
    ("[verify]\nmin_row_ratio = 2\n", ["verify.min_row_ratio", "less than or equal to 1"]),
    ("[store]\nkeep = 0\n", ["store.keep", "greater than or equal to 1"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    cfg_file = write(tmp_path / "bad.toml", text)
    assert main(["status", "--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one clear line
    assert str(cfg_file) in err
    for fragment in expected:
        assert fragment in err


def test_unreadable_and_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["status", "--config", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["status", "--config", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_bad_config_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "bad.toml", "[heal]\nretries = -2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(cfg_file)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "heal.retries" in proc.stderr and str(cfg_file) in proc.stderr


def test_config_error_is_raised_for_api_users(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log.level"):
        load_config(write(tmp_path / "c.toml", '[log]\nlevel = "LOUD"\n'))


def test_command_line_overrides_are_part_of_loading(tmp_path: Path) -> None:
    """``--host``/``--port``/``--db`` go into the one Config load; a bad one names the flag."""
    from core.config import Override

    cfg_file = tmp_path / "pdh.toml"
    cfg_file.write_text('[api]\nport = 8100\n[dashboard]\nhost = "0.0.0.0"\n', "utf-8")
    loaded = load_config(cfg_file, db_override=Path("x.db"), overrides=[
        Override("api.port", 9000, "--port"), Override("dashboard.host", "::1", "--host")])
    assert loaded.config.api.port == 9000 and loaded.config.dashboard.host == "::1"
    assert loaded.config.db_path == Path.cwd() / "x.db"
    with pytest.raises(ConfigError, match=r"^--port: .*65535 \(got 70000\)$"):
        load_config(cfg_file, overrides=[Override("dashboard.port", 70000, "--port")])


def test_a_loaded_config_cannot_be_changed(tmp_path: Path) -> None:
    """Built once, never mutated: every section refuses assignment; a variant is a copy."""
    from pydantic import ValidationError

    config = load_config(write(tmp_path / "c.toml",
                               '[database]\npath = "erp/x.db"\n[log]\ndir = "logs"\n'
                               '[[alerts.webhook]]\nurl = "https://hooks.example/x"\n')).config
    assert config.db_path == tmp_path / "erp" / "x.db"  # resolved at load, by a copy
    assert config.log_dir == tmp_path / "logs"
    for target, name, value in [
        (config, "api", config.api), (config.api, "token", "x"), (config.database, "path", "y"),
        (config.heal, "retries", 9), (config.heal.indexes[0], "name", "z"),
        (config.alerts.webhook[0], "url", "https://other.example/"),
    ]:
        with pytest.raises(ValidationError, match="frozen"):
            setattr(target, name, value)
    variant = config.model_copy(update={"api": config.api.model_copy(update={"token": "t"})})
    assert variant.api.token == "t" and config.api.token == ""


def test_an_empty_folder_means_the_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", '[log]\ndir = ""\n[state]\ndir = ""\n'
                                                    '[store]\ndir = ""\n')).config
    assert config.log.dir is None and config.state.dir is None and config.store.dir is None
    assert config.store_dir.name == "snapshots"  # the platform's folder
