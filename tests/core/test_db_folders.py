"""One database, one store: default folders of a database's own, a store that knows whose
it is, messages that name every missing table, and the upgrade from the flat layout."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from core.checkonce import check_once
from core.config import Config, legacy_dirs, parse_config
from core.layout import Legacy, adopt_legacy
from core.store import ForeignStore, Store, store_of
from tests.conftest import make_config, make_db


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    return tmp_path / "home"


def default_config(db: Path, **sections: dict[str, object]) -> Config:
    data: dict[str, object] = {"database": {"path": str(db)},
                               "heal": {"connect_timeout": 2.0, "retry_backoff": 0.1}}
    data.update(sections)
    return parse_config(data, base=db.parent)


def test_each_database_has_folders_of_its_own(tmp_path: Path, home: Path) -> None:
    a = default_config(tmp_path / "Plant1" / "production_analysis.db")
    b = default_config(tmp_path / "Plant2" / "production_analysis.db")
    for kind in ("store_dir", "state_dir", "log_dir"):
        assert getattr(a, kind) != getattr(b, kind)
        assert str(home) in str(getattr(a, kind))
    assert a.db_folder.startswith("production_analysis-") and len(a.db_folder) == 30
    assert a.store_dir.parent.name == a.state_dir.name == a.log_dir.name == a.db_folder
    assert a.events_file.parent == a.log_dir and a.state_file.parent == a.state_dir
    # The same file named another way is the same database.
    again = default_config(tmp_path / "Plant1" / "x" / ".." / "production_analysis.db")
    assert again.store_dir == a.store_dir
    # Explicit folders win.
    explicit = default_config(tmp_path / "Plant1" / "production_analysis.db",
                              store={"dir": str(tmp_path / "s")}, log={"dir": "logs"})
    assert explicit.store_dir == tmp_path / "s"
    assert explicit.log_dir == tmp_path / "Plant1" / "logs"
    assert explicit.state_dir == a.state_dir


def test_two_databases_on_one_store_dir_are_refused_naming_both(
        tmp_path: Path, small_db_template: Path) -> None:
    db_a = tmp_path / "a" / "production_analysis.db"
    db_b = tmp_path / "b" / "production_analysis.db"
    for db in (db_a, db_b):
        db.parent.mkdir()
        shutil.copyfile(small_db_template, db)
    config_a = make_config(tmp_path, db=db_a)
    config_b = make_config(tmp_path, db=db_b)  # the same [store] dir, by mistake
    assert config_a.store_dir == config_b.store_dir
    first = check_once(config_a)
    assert first.publish == "published", first
    served = store_of(config_a).current()

    second = check_once(config_b)
    assert second.ok is False and second.publish == "failed"
    message = second.summary
    assert f"belongs to {db_a}, not to {db_b}" in message and str(config_a.store_dir) in message
    assert "give each database its own [store] dir" in message
    assert store_of(config_a).current() == served  # nothing published into A's store
    # A reader of B given that store serves nothing of A's.
    assert store_of(config_b).current() is None
    with pytest.raises(ForeignStore):
        store_of(config_b).prepare()


def test_a_file_lacking_several_tables_names_them_all_and_nothing_is_served(
        tmp_path: Path) -> None:
    db = tmp_path / "data" / "production_analysis.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (item_code TEXT PRIMARY KEY, item_name TEXT)")
    conn.close()
    outcome = check_once(make_config(tmp_path, db=db, heal={"in_place": False}))
    assert outcome.publish == "held_back", outcome
    assert outcome.held_back is not None
    reason = outcome.held_back.reason
    assert reason.startswith("the export lacks the tables defect_records, lines, "
                             "production_records"), reason
    assert "the columns" in reason and "of items" in reason  # items lacks columns too


def test_serving_words_say_whose_data_is_served(tmp_path: Path, small_db_template: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "data" / "production_analysis.db"
    db.parent.mkdir()
    db.write_bytes(b"not a database at all, " * 100)
    config = make_config(tmp_path, db=db)
    with caplog.at_level(logging.ERROR, logger="core.publisher"):
        check_once(config)
    assert "export held back (nothing is served yet)" in caplog.text
    shutil.copyfile(small_db_template, db)
    assert check_once(config).publish == "published"
    db.write_bytes(b"not a database at all, " * 100)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="core.publisher"):
        check_once(config)
    assert "export held back (still serving the last good data)" in caplog.text


def legacy_layout(config: Config) -> Legacy:
    """What an earlier release left: ``config``'s database published into the flat default
    folders (no source.json: those releases wrote none)."""
    legacy = Legacy.default()
    old = config.model_copy(update={
        "store": config.store.model_copy(update={"dir": legacy.store}),
        "state": config.state.model_copy(update={"dir": legacy.state}),
        "log": config.log.model_copy(update={"dir": legacy.logs}),
    })
    assert check_once(old).publish == "published"
    (legacy.store / "source.json").unlink()
    # The old hub saved its state there too; check_once does not, so write what it wrote.
    from core.dbfile import look
    from core.state import PersistedState, save_state

    save_state(legacy.state_file, PersistedState(known_version=look(config.db_path).version))
    return legacy


def test_the_upgrade_moves_the_flat_store_to_its_database(
        tmp_path: Path, home: Path, small_db_template: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    db_a = make_db(tmp_path / "a" / "production_analysis.db", rows=800)
    db_b = make_db(tmp_path / "b" / "production_analysis.db", rows=900, seed=2)
    config_a, config_b = default_config(db_a), default_config(db_b)
    legacy = legacy_layout(config_a)
    assert legacy.store == legacy_dirs()[0] and str(home) in str(legacy.store)
    served = Store(legacy.store).current()
    assert served is not None and served.rows == 800

    # Another database's hub leaves it alone, and says where it is.
    with caplog.at_level(logging.INFO, logger="core.layout"):
        assert adopt_legacy(config_b) is False
    assert f"an old snapshot store from before per-database folders is at {legacy.store}" in (
        caplog.text) and "it can be deleted" in caplog.text
    assert (legacy.store / "current.json").is_file()

    # Its own database's hub takes it over: the same snapshot, served from its own folder.
    assert adopt_legacy(config_a) is True
    assert not legacy.store.exists() and not legacy.state_file.exists()
    assert store_of(config_a).current() == served
    assert config_a.state_file.is_file() and config_a.events_file.is_file()
    assert check_once(config_a).publish == "unchanged"  # no new copy was needed
    assert store_of(config_a).source() is not None  # claimed on the way
    assert adopt_legacy(config_a) is False  # once


def test_the_upgrade_knows_its_database_by_the_old_lock_after_an_export(
        tmp_path: Path, home: Path) -> None:
    db = make_db(tmp_path / "a" / "production_analysis.db", rows=800)
    config = default_config(db)
    legacy = legacy_layout(config)
    make_db(tmp_path / "new.db", rows=850, seed=3).replace(db)  # exported while stopped
    assert adopt_legacy(config, tmp_path / "pdh.toml") is False  # no sign it is this one's
    legacy.lock_file(tmp_path / "pdh.toml", db).touch()  # what the old hub left
    assert adopt_legacy(config, tmp_path / "pdh.toml") is True
    assert store_of(config).current() is not None
