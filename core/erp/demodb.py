"""Realistic demo data in exactly the ERP's export format (``core/erp/erp_schema.sql``).

Everything is drawn from one ``random.Random(seed)``, so a seed and an end date give the
same file every time. Rows come from one generator of batches, shared by
:func:`create_demo_db` (a whole new file, written fast) and by the ERP simulator's
rebuild mode (:func:`write_erp_data` into an open connection, pausing between batches).

At ~480 lines this is one module on purpose: the factory's catalogue (families, lines,
processes, defect codes) and the batch generator that draws every row from it share one
random stream, whose order is what makes a seed reproduce a file; split, the order of
draws would be spread over two files.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

__all__ = [
    "DemoStats",
    "build_demo_file",
    "create_demo_db",
    "erp_schema_sql",
    "erp_schema_statements",
    "write_erp_data",
]

DEFAULT_BATCH_ROWS = 20_000
SHIFT_MINUTES = 600  # one shift as the ERP books it: run time plus stoppages
_PLANNED_RUN_MINUTES = 570  # planners allow ~30 min of stoppage per shift
_SIDECARS = ("-journal", "-wal", "-shm")

Row = tuple[object, ...]
Batch = tuple[list[Row], list[Row]]  # (production_records rows, defect_records rows)


@dataclass(frozen=True)
class DemoStats:
    """What a demo-data run wrote."""

    rows: int
    defect_rows: int
    items: int
    lines: int
    date_from: date
    date_to: date
    seconds: float


@cache
def erp_schema_sql() -> str:
    """The ERP's schema script, byte for byte as shipped (so ``sqlite_master.sql`` matches)."""
    data = resources.files(__package__ or "core").joinpath("erp_schema.sql").read_bytes()
    return data.decode("utf-8")


def erp_schema_statements() -> list[str]:
    """The schema split into single statements, for running inside an open transaction.

    ``executescript`` would commit first, which a one-transaction rebuild must not do.
    """
    statements: list[str] = []
    buf = ""
    for line in erp_schema_sql().splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    return statements


# --- catalogue -------------------------------------------------------------------------

# (code prefix, family, item count, parts per minute on a line of speed 1.0)
_FAMILIES: list[tuple[str, str, int, float]] = [
    ("BR", "브래킷", 36, 4.0),
    ("HS", "하우징", 30, 1.2),
    ("CV", "커버", 28, 3.0),
    ("SH", "샤프트", 26, 0.6),
    ("GR", "기어", 26, 0.5),
    ("FL", "플랜지", 24, 0.8),
    ("PN", "패널", 24, 2.5),
    ("HG", "힌지", 22, 5.0),
    ("BS", "부싱", 22, 1.5),
    ("PL", "풀리", 22, 0.7),
    ("CL", "클램프", 20, 5.0),
    ("PT", "플레이트", 20, 3.5),
]  # 300 items


def _spec(prefix: str, rnd: random.Random) -> str:
    """A drawing-style spec line for one item of a family."""
    r = rnd.randrange
    t = rnd.choice(("0.8", "1.0", "1.2", "1.6", "2.0", "2.3", "3.2"))
    if prefix == "BR":
        return f"SPCC t{t} {r(40, 200, 5)}x{r(30, 150, 5)}"
    if prefix == "HS":
        return f"ADC12 {r(60, 300, 10)}x{r(40, 200, 10)}x{r(20, 120, 5)}"
    if prefix == "CV":
        return rnd.choice((f"SPCC t{t} {r(80, 400, 10)}x{r(60, 300, 10)}", "PP 흑색", "ABS 회색"))
    if prefix == "SH":
        return f"S45C Ø{r(8, 50, 2)}x{r(60, 400, 10)}"
    if prefix == "GR":
        return f"SCM415 m{rnd.choice(('1.5', '2', '2.5', '3'))} z{r(18, 64)}"
    if prefix == "FL":
        return f"SS400 Ø{r(60, 250, 10)} t{r(6, 25)}"
    if prefix == "PN":
        return f"SGCC t{t} {r(300, 1200, 50)}x{r(200, 900, 50)}"
    if prefix == "HG":
        return f"SUS304 {r(30, 120, 5)}mm"
    if prefix == "BS":
        return f"C3604 Ø{r(6, 30)}xØ{r(32, 60)}x{r(10, 60, 5)}"
    if prefix == "PL":
        return f"AL6061 Ø{r(50, 300, 10)} {rnd.choice(('A', 'B', 'SPZ'))}형 홈"
    if prefix == "CL":
        return f"SK5 {r(20, 90, 5)}mm 열처리"
    return f"SS400 t{t} {r(50, 500, 10)}x{r(50, 400, 10)}"


_LINE_LAYOUT: dict[str, tuple[str, ...]] = {
    "P1": ("프레스", "프레스", "프레스", "용접", "용접", "도장", "조립", "조립"),
    "P2": ("가공", "가공", "가공", "프레스", "용접", "도장", "조립", "조립"),
}
_PROCESS_FAMILIES: dict[str, tuple[str, ...]] = {
    "프레스": ("BR", "CV", "PN", "HG", "CL", "PT"),
    "용접": ("BR", "HS", "FL", "PT"),
    "도장": ("CV", "PN", "HS", "BR"),
    "조립": ("HS", "HG", "GR", "CL"),
    "가공": ("SH", "GR", "FL", "BS", "PL"),
}
_PROCESS_SPEED = {"프레스": 1.0, "용접": 0.45, "도장": 0.8, "조립": 0.6, "가공": 1.0}
_PROCESS_DEFECT_RATE = {"프레스": 0.009, "용접": 0.016, "도장": 0.02, "조립": 0.007, "가공": 0.012}

_DEFECT_NAMES = {
    "D01": "찍힘", "D02": "버(Burr)", "D03": "치수 불량", "D04": "스크래치",
    "D05": "용접 불량", "D06": "도장 불량", "D07": "변형", "D08": "이물",
    "D09": "크랙", "D10": "조립 불량", "D11": "부품 누락", "D12": "기타",
}  # fmt: skip
# Most frequent first: a process's typical defects dominate its breakdowns.
_PROCESS_DEFECTS: dict[str, tuple[str, ...]] = {
    "프레스": ("D01", "D02", "D07", "D03", "D09", "D04", "D12"),
    "용접": ("D05", "D07", "D03", "D04", "D09", "D12"),
    "도장": ("D06", "D08", "D04", "D01", "D12"),
    "조립": ("D10", "D11", "D04", "D01", "D03", "D12"),
    "가공": ("D03", "D02", "D04", "D01", "D09", "D12"),
}


@dataclass(frozen=True)
class _Line:
    code: str
    process: str
    pool: list[tuple[str, float, float]]  # (item_code, parts per minute, defect rate)
    defect_orders: list[list[tuple[str, str]]]  # pre-drawn (code, name) orders, no repeats


@dataclass(frozen=True)
class _Catalog:
    item_rows: list[Row]
    line_rows: list[Row]
    lines: list[_Line]


def _build_catalog(rnd: random.Random) -> _Catalog:
    """Items, lines, which line makes which item, and each line's defect habits."""
    item_rows: list[Row] = []
    by_family: dict[str, list[tuple[str, float, float]]] = {}
    variants = [f"{letter}형{side}" for letter in "ABCDEFGHIJKLM" for side in ("", " LH", " RH")]
    for prefix, family, count, speed in _FAMILIES:
        chosen = sorted(rnd.sample(range(len(variants)), count))
        for n, v in enumerate(chosen):
            code = f"{prefix}-{1001 + n}"
            spec = None if rnd.random() < 0.12 else _spec(prefix, rnd)
            unit = "SET" if prefix in ("HG", "CL") and rnd.random() < 0.15 else "EA"
            item_rows.append((code, f"{family} {variants[v]}", family, spec, unit))
            # Items differ in speed and in how hard they are to make well.
            by_family.setdefault(prefix, []).append(
                (code, speed * rnd.uniform(0.7, 1.3), rnd.uniform(0.6, 1.6))
            )

    line_rows: list[Row] = []
    layout = [(p, i, proc) for p, procs in _LINE_LAYOUT.items() for i, proc in enumerate(procs)]
    pools: list[list[tuple[str, float, float]]] = [[] for _ in layout]
    for idx, (plant, i, process) in enumerate(layout):
        nth = _LINE_LAYOUT[plant][: i + 1].count(process)
        line_rows.append(
            (f"{plant}-L{i + 1:02d}", f"{plant[1]}공장 {process} {nth}라인", plant, process)
        )
        # Each line runs a subset of the families its process can make.
        for prefix in _PROCESS_FAMILIES[process]:
            pools[idx].extend(it for it in by_family[prefix] if rnd.random() < 0.6)
    # Every item is made somewhere, so none of the 300 is dead master data.
    made = {it[0] for pool in pools for it in pool}
    for prefix, items in by_family.items():
        homes = [i for i, lay in enumerate(layout) if prefix in _PROCESS_FAMILIES[lay[2]]]
        for it in items:
            if it[0] not in made:
                pools[rnd.choice(homes)].append(it)

    lines: list[_Line] = []
    for (_plant, _i, process), row, pool in zip(layout, line_rows, pools, strict=True):
        speed, base_rate = _PROCESS_SPEED[process], _PROCESS_DEFECT_RATE[process]
        codes = _PROCESS_DEFECTS[process]
        weights = [1.0 / (rank + 1) ** 1.6 for rank in range(len(codes))]
        orders = []
        for _ in range(64):
            left, w, order = list(codes), list(weights), []
            while left:
                k = rnd.choices(range(len(left)), w)[0]
                order.append((left[k], _DEFECT_NAMES[left[k]]))
                del left[k], w[k]
            orders.append(order)
        lines.append(
            _Line(
                code=str(row[0]),
                process=process,
                pool=[(c, rate * speed, dfac * base_rate) for c, rate, dfac in pool],
                defect_orders=orders,
            )
        )
    return _Catalog(item_rows=item_rows, line_rows=line_rows, lines=lines)


# --- production rows -------------------------------------------------------------------


def _record_batches(
    rnd: random.Random, catalog: _Catalog, *, rows: int, days: int, end_date: date, batch_rows: int
) -> Iterator[Batch]:
    """Yield production and defect rows, exactly ``batch_rows`` records per batch (the last
    may be shorter). One hot loop with local names: this runs a million times for benchmarks.
    """
    random_ = rnd.random
    first = end_date - timedelta(days=days - 1)
    day_list = [first + timedelta(days=d) for d in range(days + 1)]
    iso = [d.isoformat() for d in day_list]
    yymmdd = [d.strftime("%y%m%d") for d in day_list]
    last = days - 1
    lines = catalog.lines
    slots = [(shift, li) for shift in ("D", "N") for li in range(len(lines))]
    n_slots = len(slots)
    # A few bad line-days (breakdowns, new dies) and rare plant-wide bad days (outages).
    plant_of = [str(row[2]) for row in catalog.line_rows]
    plants = sorted(set(plant_of))
    bad = []
    for _ in range(days):
        bad_plants = {p for p in plants if random_() < 0.006}
        bad.append([random_() < 0.025 or plant_of[li] in bad_plants for li in range(len(lines))])
    current: list[tuple[str, float, float, str] | None] = [None] * len(lines)
    wo_year, wo_seq = day_list[0].year, 100 + int(random_() * 400)

    recs: list[Row] = []
    defs: list[Row] = []
    rec_append, def_append = recs.append, defs.append
    rid = 0
    for d in range(days):
        n_day = (d + 1) * rows // days - d * rows // days  # evenly spread, every day has rows
        ds, lot_prefix = iso[d], f"L{yymmdd[d]}-"
        if day_list[d].year != wo_year:
            wo_year, wo_seq = day_list[d].year, 0
        base, extra = divmod(n_day, n_slots)
        offset = int(random_() * n_slots)
        lot_seq = 0
        for s, (shift, li) in enumerate(slots):
            k = base + ((s - offset) % n_slots < extra)
            if not k:
                continue
            line = lines[li]
            line_code, pool, orders = line.code, line.pool, line.defect_orders
            n_pool, n_orders = len(pool), len(orders)
            if bad[d][li]:
                down_total = 90.0 + 150.0 * random_()
                eff_lo, eff_span, dmult = 0.82, 0.1, 2.0 + 2.0 * random_()
            else:
                down_total = 8.0 + 70.0 * random_() * random_()
                eff_lo, eff_span, dmult = 0.94, 0.08, 1.0
            if shift == "N":
                dmult *= 1.15  # night shifts run a little rougher
            run_total = SHIFT_MINUTES - down_total
            # When the report reaches the ERP: after the shift, sometimes corrected days later.
            if shift == "D":
                upd_date, upd_start, upd_window = ds, 63000, 10800  # 17:30 .. 20:30
            elif d < last:
                upd_date, upd_start, upd_window = iso[d + 1], 19800, 10800  # 05:30 next day
            else:
                upd_date, upd_start, upd_window = ds, 79200, 7000  # export runs before 24:00
            weights = [0.5 + random_() for _ in range(k)]
            wsum = sum(weights)
            for w in weights:
                w /= wsum
                cur = current[li]
                if cur is None or random_() < 0.3:  # a new work order starts on this line
                    wo_seq += 1
                    code, rate, drate = pool[int(random_() * n_pool)]
                    cur = current[li] = (code, rate, drate, f"WO-{wo_year}-{wo_seq:06d}")
                code, rate, drate, wo = cur
                run = run_total * w
                plan = int(_PLANNED_RUN_MINUTES * w * rate + 0.5)
                plan = (plan + 5) // 10 * 10 if plan >= 100 else plan or 1
                made = int(run * rate * (eff_lo + eff_span * random_()) + random_())
                dq = int(made * drate * dmult * (0.4 + 1.2 * random_()) + random_())
                if dq > made:
                    dq = made
                lot_seq += 1
                if d < last and random_() < 0.02:
                    udate = iso[min(d + 1 + int(random_() * 4), last)]
                    t = 32400 + int(random_() * 32400)  # office hours correction
                else:
                    udate, t = upd_date, upd_start + int(random_() * upd_window)
                rid += 1
                rec_append((
                    rid, ds, shift, line_code, code, wo, f"{lot_prefix}{lot_seq:04d}",
                    plan, made - dq, dq, round(run, 1), round(down_total * w, 1),
                    f"{udate}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}",
                ))  # fmt: skip
                if dq:
                    order = orders[int(random_() * n_orders)]
                    r = random_()
                    kinds = 1 if dq == 1 or r < 0.45 else (2 if r < 0.8 or dq == 2 else 3)
                    remaining = dq
                    for j in range(kinds - 1):
                        room = remaining - (kinds - 1 - j)  # leave at least 1 for each next
                        take = room - int(random_() * room * 0.5)  # the first kind dominates
                        def_append((rid, order[j][0], order[j][1], take))
                        remaining -= take
                    def_append((rid, order[kinds - 1][0], order[kinds - 1][1], remaining))
                if len(recs) >= batch_rows:
                    yield recs, defs
                    recs, defs = [], []
                    rec_append, def_append = recs.append, defs.append
    if recs:
        yield recs, defs


_INSERT_RECORD = (
    "INSERT INTO production_records (record_id, work_date, shift, line_code, item_code,"
    " work_order, lot_no, plan_qty, good_qty, defect_qty, run_minutes, downtime_minutes,"
    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DEFECT = (
    "INSERT INTO defect_records (record_id, defect_code, defect_name, qty) VALUES (?,?,?,?)"
)


def _insert_batch(conn: sqlite3.Connection, *inserts: tuple[str, list[Row]]) -> None:
    """Run the inserts in the caller's transaction, or in one of their own if there is none."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    for sql, rows in inserts:
        conn.executemany(sql, rows)
    if own:
        conn.commit()


def write_erp_data(
    conn: sqlite3.Connection,
    *,
    rows: int = 50_000,
    seed: int = 1,
    days: int = 365,
    end_date: date | None = None,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    between_batches: Callable[[], None] | None = None,
) -> DemoStats:
    """Insert demo data into the (empty) ERP tables of an open connection.

    If the caller holds a transaction, everything goes into it; otherwise each batch is
    its own transaction. ``progress(n)`` gets the production rows of each batch;
    ``between_batches()`` runs after each batch is executed (and committed, if ours).
    """
    if rows < 0 or days < 1 or batch_rows < 1:
        raise ValueError(
            f"need rows >= 0, days >= 1, batch_rows >= 1 (got {rows}, {days}, {batch_rows})"
        )
    started = time.perf_counter()
    end = end_date or date.today()
    rnd = random.Random(seed)
    catalog = _build_catalog(rnd)

    _insert_batch(
        conn,
        ("INSERT INTO items VALUES (?,?,?,?,?)", catalog.item_rows),
        ("INSERT INTO lines VALUES (?,?,?,?)", catalog.line_rows),
    )
    n_records = n_defects = 0
    for recs, defs in _record_batches(
        rnd, catalog, rows=rows, days=days, end_date=end, batch_rows=batch_rows
    ):
        _insert_batch(conn, (_INSERT_RECORD, recs), (_INSERT_DEFECT, defs))
        n_records += len(recs)
        n_defects += len(defs)
        if progress is not None:
            progress(len(recs))
        if between_batches is not None:
            between_batches()
    return DemoStats(
        rows=n_records,
        defect_rows=n_defects,
        items=len(catalog.item_rows),
        lines=len(catalog.line_rows),
        date_from=end - timedelta(days=days - 1),
        date_to=end,
        seconds=time.perf_counter() - started,
    )


def _remove_with_sidecars(path: Path) -> None:
    for p in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        p.unlink(missing_ok=True)


def build_demo_file(
    path: Path,
    *,
    rows: int = 50_000,
    seed: int = 1,
    days: int = 365,
    end_date: date | None = None,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    between_batches: Callable[[], None] | None = None,
) -> DemoStats:
    """Write a new demo database directly at ``path`` (not atomic: see :func:`create_demo_db`).

    Journal and fsync are off while writing: the file is private until it is complete.
    """
    started = time.perf_counter()
    _remove_with_sidecars(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.executescript(erp_schema_sql())
        conn.execute("BEGIN")
        stats = write_erp_data(
            conn, rows=rows, seed=seed, days=days, end_date=end_date, progress=progress,
            batch_rows=batch_rows, between_batches=between_batches,
        )  # fmt: skip
        conn.commit()
        # Leave it like the ERP's own export: an ordinary rollback-journal database.
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    return dataclasses.replace(stats, seconds=time.perf_counter() - started)


def create_demo_db(
    path: Path,
    *,
    rows: int = 50_000,
    seed: int = 1,
    days: int = 365,
    end_date: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoStats:
    """Write a demo ``production_analysis.db`` at ``path``, replacing it atomically.

    ``rows`` production records over ``days`` days ending ``end_date`` (default today);
    every day has rows when ``rows >= days``. ``progress(n)`` is told of each batch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        stats = build_demo_file(
            tmp, rows=rows, seed=seed, days=days, end_date=end_date, progress=progress
        )
        os.replace(tmp, path)
    except BaseException:
        _remove_with_sidecars(tmp)
        raise
    return stats
