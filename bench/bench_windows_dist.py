"""The Windows zip (``make windows-dist``): its size, and cold starts under Wine.

    PDH_WINE_ENV=.wine-env python bench/bench_windows_dist.py dist/ProductionDataHub-*.zip

Extracts the zip into the Wine environment's prefix (``C:\\pdh-bench``; the zip uses its
own interpreter, not the prefix's) and times, each ``--repeat`` times in new processes:
``pdh.exe --version``, with the floor measured in the same run (the bundled
``python.exe -c pass``: Wine's process start plus the interpreter's) and the launcher's
share (``python.exe -m agent --version``); and ``pdh.exe run --headless`` from start to
the API's first answer. Prints the machine, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.windows.wine import Wine, wine_session  # noqa: E402


def timed(wine: Wine, *args: str) -> float:
    started = time.perf_counter()
    out = wine.run(*args)
    took = time.perf_counter() - started
    assert out.returncode == 0, out.stdout
    return took


def api_start(wine: Wine, pdh: str, folder: Path) -> float:
    port = free_port()
    (folder / "hub.toml").write_text(
        f"[database]\npath = 'hub.db'\n[api]\nport = {port}\n[dashboard]\nenabled = false\n"
        "[log]\ndir = 'logs'\n[state]\ndir = 'state'\n[store]\ndir = 'snapshots'\n",
        encoding="utf-8")
    started = time.perf_counter()
    proc = wine.start_process(pdh, "run", "--headless", "--config", "hub.toml", name="hub")
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1,
                             trust_env=False).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if proc.popen.poll() is not None or time.perf_counter() - started > 180:
                raise RuntimeError("the hub did not answer:\n" + proc.output()[-2000:])
            time.sleep(0.05)
    finally:
        proc.stop()
        shutil.rmtree(folder / "state", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("zip", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = Path(os.environ.get("PDH_WINE_ENV", ".wine-env")).absolute()
    print(describe())
    with zipfile.ZipFile(args.zip) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
        files = len(zf.infolist())
    result: dict[str, object] = {"zip_mb": round(args.zip.stat().st_size / 1e6, 1),
                                 "unpacked_mb": round(unpacked / 1e6, 1), "files": files}
    with tempfile.TemporaryDirectory() as tmp, wine_session(env, Path(tmp)) as wine:
        target = env / "prefix" / "drive_c" / "pdh-bench"
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(args.zip) as zf:
            zf.extractall(target)
        root = r"C:\pdh-bench\ProductionDataHub"
        pdh, python = rf"{root}\pdh.exe", rf"{root}\python\python.exe"
        wine.workdir = Path(tmp)
        assert wine.run(pdh, "demo-db", "hub.db", "--rows", "20000").returncode == 0
        runs = {"python -c pass": [timed(wine, python, "-c", "pass") for _ in range(args.repeat)],
                "python -m agent --version":
                    [timed(wine, python, "-m", "agent", "--version")
                     for _ in range(args.repeat)],
                "pdh.exe --version": [timed(wine, pdh, "--version")
                                      for _ in range(args.repeat)],
                "pdh.exe run --headless to API": [api_start(wine, pdh, Path(tmp))
                                                  for _ in range(max(2, args.repeat // 2))]}
        shutil.rmtree(target, ignore_errors=True)
    result.update({name: {"median_s": round(statistics.median(v), 2),
                          "min_s": round(min(v), 2), "max_s": round(max(v), 2)}
                   for name, v in runs.items()})
    result["load"] = os.getloadavg()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
