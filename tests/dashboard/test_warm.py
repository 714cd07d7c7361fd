"""The dashboard's warmer: the default view is ready before anybody asks, at start and
after each publish, so the page's run makes no query at all; it stops within a second.

Real store, real published snapshots (the ``pdh check`` pipeline); the page runs under
AppTest, which shares the process's caches with the warmer (as sessions share them with
the warmer in the dashboard process). The queries are counted, not replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import queries as q
from core.checkonce import check_once
from core.erp.erpsim import ExportMode, simulate_export
from dashboard import data
from dashboard.i18n import tr
from dashboard.warm import Warmer
from tests.conftest import published_config, wait_for
from tests.dashboard.conftest import default_period, expected_kpis, metrics

QUERIES = ("date_range", "items", "lines", "kpis", "summary_daily", "summary_lines",
           "summary_items", "defects_pareto", "records")


@pytest.fixture
def queries_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every core query run from now on (the real query still runs)."""
    calls: list[str] = []
    for name in QUERIES:
        real: Callable[..., object] = getattr(q, name)

        def counted(*args: object, _real: Callable[..., object] = real, _name: str = name,
                    **kwargs: object) -> object:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(q, name, counted)
    return calls


@pytest.fixture
def warmer_for() -> Iterator[Callable[..., Warmer]]:
    started: list[Warmer] = []

    def make(config: object) -> Warmer:
        warmer = Warmer(config, interval=0.05, ready=lambda: True).start()  # type: ignore[arg-type]
        started.append(warmer)
        return warmer

    yield make
    for warmer in started:
        assert warmer.stop(timeout=5), "the warmer did not stop"


def good_qty(at: AppTest) -> str:
    return metrics(at)[tr("good_qty", "ko")][0]


def test_the_page_after_a_publish_runs_no_query(
        page: Callable[..., AppTest], tmp_path: Path, small_db: Path,
        queries_run: list[str], warmer_for: Callable[..., Warmer]) -> None:
    config = published_config(tmp_path, db=small_db, ui={"language": "ko"})
    version = data.published_version(config)
    warmer = warmer_for(config)
    assert warmer.wait_warmed(version, 30), "the warmer never warmed the first snapshot"
    assert queries_run, "the warmer ran no query"
    queries_run.clear()
    at = page(config)
    assert not at.exception, at.exception
    assert queries_run == [], f"the page queried what should have been warm: {queries_run}"
    exp = expected_kpis(small_db, *default_period(small_db))
    assert good_qty(at) == f"{exp['good']:,}"

    # A new export is published: the warmer notices the pointer and warms it too.
    simulate_export(small_db, ExportMode.REPLACE, rows=1500, seconds=0, seed=21, days=20)
    assert check_once(config).publish == "published"
    new_version = data.published_version(config)
    assert new_version != version
    assert warmer.wait_warmed(new_version, 30), "the warmer missed the new snapshot"
    queries_run.clear()
    at = page(config, lang="en")  # both languages are warm
    assert not at.exception, at.exception
    assert queries_run == [], f"the page queried what should have been warm: {queries_run}"
    new = expected_kpis(small_db, *default_period(small_db))
    assert new["good"] != exp["good"]
    assert metrics(at)[tr("good_qty", "en")][0] == f"{new['good']:,}"


def test_the_warmer_waits_for_the_runtime_and_stops_at_once(tmp_path: Path, small_db: Path,
                                                            queries_run: list[str]) -> None:
    config = published_config(tmp_path, db=small_db)
    ready = {"now": False}
    warmer = Warmer(config, interval=60.0, ready=lambda: ready["now"]).start()
    try:
        time.sleep(0.3)  # a bound, not a wait: nothing may happen before the runtime
        assert warmer.warmed == "" and queries_run == []
        ready["now"] = True
        assert warmer.wait_warmed(data.published_version(config), 30)
    finally:
        started = time.monotonic()
        assert warmer.stop(timeout=5)
    # Its next look was a minute away: the stop does not wait for it.
    assert time.monotonic() - started < 2.0


def test_a_snapshot_that_cannot_be_read_is_tried_again(tmp_path: Path, small_db: Path,
                                                       warmer_for: Callable[..., Warmer],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = published_config(tmp_path, db=small_db)
    real = q.kpis
    fail = {"left": 2}

    def flaky(*args: object, **kwargs: object) -> object:
        if fail["left"] > 0:
            fail["left"] -= 1
            raise q.DataUnavailable("disk went away for a moment", "unreadable")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(q, "kpis", flaky)
    warmer = warmer_for(config)
    assert warmer.wait_warmed(data.published_version(config), 30)
    wait_for(lambda: warmer.failures >= 1, 5, message="the failure to be counted")
    assert fail["left"] == 0
