"""The MSI (``make windows-msi``, packaging/windows/build_msi.py) in one fresh Wine prefix
with no Python, in a network namespace with loopback only, as IT would deploy it:
``msiexec /i ... /qn`` per-user (files, Start-menu shortcuts, ``pdh.exe --version``, the
tray started from the shortcut's target, the Run value off with AUTOSTART=0, the
Uninstall entry, CONFIG= copied), an upgrade from version N to N+1 built here (config,
state and snapshots kept, the running tray stopped and started again, N's files gone,
one Uninstall entry, the Run value on with AUTOSTART=1), ``msiexec /x`` (program files,
shortcuts and Run value gone, the data folder kept), per-machine with SERVICE=1 under
Wine's service manager (the service answers on its API; uninstall removes it), and
Authenticode: N is built signed with a throwaway CA made here, ``osslsigncode verify``
accepts the MSI and the installed exes, a tampered copy fails.

The steps share the prefix and run in order (each needs the one before).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.windows.conftest import ENV_DIR, free_port, processes_with
from tests.windows.wine import Wine, wait_until, winpath

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

DIST = os.environ.get("PDH_WINDOWS_DIST")
ROOT = Path(__file__).resolve().parents[2]
BUILD_MSI = ROOT / "packaging" / "windows" / "build_msi.py"
OLD, NEW = "1.0.0", "1.0.1"
RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
ONLY_IN_OLD = "only-in-1.0.0.txt"


@dataclass
class Msi:
    wine: Wine
    holder: subprocess.Popen[bytes]  # keeps the network namespace
    work: Path
    packages: dict[str, Path]
    ca: Path
    api_port: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def drive_c(self) -> Path:
        return self.wine.prefix / "drive_c"

    @property
    def profile(self) -> Path:
        return next(p for p in (self.drive_c / "users").iterdir() if p.name != "Public")

    @property
    def folder(self) -> Path:  # the per-user install folder
        return self.profile / "AppData" / "Local" / "Programs" / "ProductionDataHub"

    @property
    def pdh(self) -> str:  # by its C: name, as Windows knows it (not Wine's Z: view)
        return (f"C:\\users\\{self.profile.name}\\AppData\\Local\\Programs"
                "\\ProductionDataHub\\pdh.exe")

    @property
    def data(self) -> Path:  # the hub's per-user data folder
        return self.profile / "AppData" / "Local" / "ProductionDataHub" / "pdh"

    @property
    def menu(self) -> Path:
        return (self.profile / "AppData" / "Roaming" / "Microsoft" / "Windows" / "Start Menu"
                / "Programs" / "Production Data Hub")

    def msiexec(self, *args: str, log: str) -> None:
        started = time.monotonic()
        # No pipe: a tray the upgrade starts again would inherit it (Wine hands its Unix
        # descriptors down) and the read would never end.
        code = subprocess.run(self.wine._argv(["msiexec", *args, "/qn", "/l*v",
                                               winpath(self.work / log)]),
                              env=self.wine.env, cwd=self.work, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=300).returncode
        self.notes[log] = round(time.monotonic() - started, 1)
        assert code == 0, self.tail(log)

    def tail(self, log: str) -> str:
        path = self.work / log
        text = path.read_bytes().decode("utf-8", "replace") if path.exists() else ""
        return text[-3000:]

    def get(self, url: str) -> int | None:
        code = ("import httpx, sys\n"
                "try: print(httpx.get(sys.argv[1], timeout=3, trust_env=False).status_code)\n"
                "except httpx.HTTPError: print(0)")
        out = subprocess.run(["nsenter", "-t", str(self.holder.pid), "-n", sys.executable,
                              "-c", code, url], capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip() or 0) or None

    def health(self, port: int) -> bool:
        return self.get(f"http://127.0.0.1:{port}/api/v1/health") == 200

    def reg(self, key: str) -> str:
        return self.wine.run("reg", "query", key, "/s").stdout

    def uninstall_entries(self) -> list[str]:
        text = self.reg(r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall")
        return [block for block in re.split(r"\n(?=HKEY_)", text)
                if "DisplayName    REG_SZ    Production Data Hub" in block]

    def running_from(self, folder: Path) -> list[str]:
        """Command lines (Linux view) of the Windows processes started from ``folder``."""
        name = folder.name
        return [" ".join(p.cmdline()) for p in processes_with(name, "pythonw.exe")]


def lnk_target(path: Path) -> str:
    """The target of a .lnk (its LinkInfo's local path, ANSI, as Wine writes it)."""
    match = re.search(rb"[A-Za-z]:\\[^\x00]+?\.exe", path.read_bytes())
    assert match, f"no target in {path}"
    return match.group().decode("latin-1")


def build(zip_path: Path, version: str, out: Path, *sign: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(BUILD_MSI), "--zip", str(zip_path),
                             "--version", version, "--out", str(out), *sign],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def throwaway_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a code-signing certificate it issued (openssl): (ca, cert, key)."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    (folder / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                                    "extendedKeyUsage=codeSigning\n")
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=PDH Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "sign.key", "-out", "sign.csr",
        "-subj", "/CN=Production Data Hub test signing")
    ssl("x509", "-req", "-in", "sign.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "sign.pem", "-days", "2", "-extfile", "ext.cnf")
    return folder / "ca.pem", folder / "sign.pem", folder / "sign.key"


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Msi]:
    if not DIST or not Path(DIST).is_file():
        pytest.skip("no Windows zip: PDH_WINDOWS_DIST (make test-windows builds it)")
    missing = [t for t in ("wixl", "osslsigncode", "openssl", "nsenter", "ip")
               if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (Debian: wixl osslsigncode openssl "
                    "util-linux iproute2)")
    assert ENV_DIR
    work = tmp_path_factory.mktemp("msi")
    # N: the zip plus one file that N+1 does not have; N is the signed one.
    old_zip = work / "old.zip"
    shutil.copy(DIST, old_zip)
    with zipfile.ZipFile(old_zip, "a") as zf:
        zf.writestr(f"ProductionDataHub/{ONLY_IN_OLD}", "N\n")
    ca, cert, key = throwaway_ca(work)
    started = time.monotonic()
    builds = [build(old_zip, OLD, work / "old", "--sign-cert", str(cert), "--sign-key",
                    str(key)),
              build(Path(DIST), NEW, work / "new")]
    outputs = [b.communicate(timeout=600)[0] for b in builds]
    assert all(b.returncode == 0 for b in builds), outputs
    assert "signed" in outputs[0] and "UNSIGNED" in outputs[1], outputs
    packages = {OLD: work / "old" / f"ProductionDataHub-{OLD}-x64.msi",
                NEW: work / "new" / f"ProductionDataHub-{NEW}-x64.msi"}
    build_s = round(time.monotonic() - started, 1)

    root = tmp_path_factory.mktemp("msi-prefix")
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c",
                               "ip link set lo up && exec sleep infinity"])
    wine = Wine(root, work, wrap=["nsenter", "-t", str(holder.pid), "-n"])
    # No Start-menu entries on the Linux desktop of whoever runs the tests.
    wine.env["WINEDLLOVERRIDES"] = "mscoree,mshtml,winemenubuilder.exe="
    try:
        wait_until(lambda: Path(f"/proc/{holder.pid}/ns/net").exists()
                   and os.readlink(f"/proc/{holder.pid}/ns/net")
                   != os.readlink("/proc/self/ns/net"), "the network namespace", 10)
        wine.start()
        shutil.copy(Path(ENV_DIR) / "dl" / "bcryptprimitives.dll",
                    wine.prefix / "drive_c" / "windows" / "system32")
        for args in (("HKCU\\Software\\Wine\\Explorer", "/v", "Desktop", "/d", "Default"),
                     ("HKCU\\Software\\Wine\\Explorer\\Desktops", "/v", "Default", "/d",
                      "1024x768")):
            assert wine.run("reg", "add", *args, "/f").returncode == 0
        state = Msi(wine, holder, work, packages, ca)
        state.notes["build both MSIs (parallel)"] = build_s
        yield state
        print(f"\nMSI timings (s): {state.notes}")
    finally:
        wine.close()
        holder.kill()
        holder.wait(10)


def hub_config(msi: Msi, name: str, *, absolute_dirs: bool) -> Path:
    """A pdh.toml for a demo DB (made by the installed pdh.exe), API on a free port."""
    db = msi.work / f"{name}.db"
    msi.api_port = free_port()
    dirs = "".join(f"[{section}]\ndir = '{winpath(msi.work / name / section)}'\n"
                   for section in ("log", "state", "store")) if absolute_dirs else ""
    path = msi.work / f"{name}.toml"
    path.write_text(f"[database]\npath = '{winpath(db)}'\n[api]\nport = {msi.api_port}\n"
                    "[dashboard]\nenabled = false\n[watch]\nsettle_interval = 0.3\n"
                    f"[ui]\nnotifications = false\n{dirs}", encoding="utf-8")
    return path


def test_install_per_user(msi: Msi) -> None:
    found = [p for p in msi.drive_c.rglob("python*.exe")]
    assert found == [], found  # the prefix has no Python of its own
    config = hub_config(msi, "user", absolute_dirs=False)
    msi.msiexec("/i", winpath(msi.packages[OLD]), "AUTOSTART=0", f"CONFIG={winpath(config)}",
                log="install-user.log")

    assert (msi.folder / "pdh.exe").is_file() and (msi.folder / ONLY_IN_OLD).is_file()
    assert (msi.folder / "python" / "pythonw.exe").is_file()
    pdh = winpath(msi.folder / "pdh.exe")
    # The demo DB, made by the installed (and signed) launcher.
    out = msi.wine.run(pdh, "demo-db", winpath(msi.work / "user.db"), "--rows", "2000")
    assert out.returncode == 0, out.stdout
    out = msi.wine.run(pdh, "--version")
    assert out.returncode == 0 and out.stdout.strip().startswith("pdh "), out.stdout
    kept = msi.work / "installed-exes"  # for the signing check, after the uninstall
    kept.mkdir()
    for name in ("pdh.exe", "pdh-tray.exe"):
        shutil.copy(msi.folder / name, kept / name)

    assert sorted(p.name for p in msi.menu.iterdir()) == [
        "Open dashboard.lnk", "Production Data Hub.lnk"]
    assert lnk_target(msi.menu / "Production Data Hub.lnk").lower().endswith(
        "programs\\productiondatahub\\pdh-tray.exe")
    assert (msi.data / "pdh.toml").read_text(encoding="utf-8") == config.read_text("utf-8")
    assert "ProductionDataHub" not in msi.reg(RUN_KEY)  # AUTOSTART=0

    [entry] = msi.uninstall_entries()
    for value in ("DisplayName    REG_SZ    Production Data Hub",
                  f"DisplayVersion    REG_SZ    {OLD}",
                  "Publisher    REG_SZ    Production Data Hub", "UninstallString"):
        assert value in entry, entry

    # The tray from the shortcut's target, with the config the MSI copied in.
    target = lnk_target(msi.menu / "Production Data Hub.lnk")
    msi.wine.start_process(target, name="tray", cwd=msi.work)
    wait_until(lambda: msi.health(msi.api_port), "the tray's hub answering", 120, interval=1)
    wait_until(lambda: list(msi.data.rglob("state.json")) and list(msi.data.rglob("snapshots/*")),
               "state and a snapshot in the data folder", 60, interval=0.5)


def test_upgrade_keeps_data_and_restarts_the_tray(msi: Msi) -> None:
    before = {p.relative_to(msi.data) for p in msi.data.rglob("*") if p.is_file()
              and "Logs" not in p.parts}
    config = (msi.data / "pdh.toml").read_bytes()
    assert msi.running_from(msi.folder)
    msi.msiexec("/i", winpath(msi.packages[NEW]), "AUTOSTART=1", log="upgrade.log")

    [entry] = msi.uninstall_entries()  # one entry, the new version's
    assert f"DisplayVersion    REG_SZ    {NEW}" in entry, entry
    assert not (msi.folder / ONLY_IN_OLD).exists()  # N's files replaced by N+1's
    assert (msi.data / "pdh.toml").read_bytes() == config
    after = {p.relative_to(msi.data) for p in msi.data.rglob("*") if p.is_file()}
    assert {p for p in before if "snapshots" in p.parts or p.name == "state.json"} <= after
    # The tray that ran before the upgrade runs again, from the new files.
    wait_until(lambda: msi.health(msi.api_port), "the tray's hub after the upgrade", 120,
               interval=1)
    log = (msi.profile / "Temp" / "ProductionDataHub-msi.log").read_text(encoding="utf-8")
    assert "asking pid" in log and "starting again" in log, log

    # AUTOSTART=1: the value `pdh autostart enable` writes (status: it matches).
    assert "python\\pythonw.exe -m agent run" in msi.reg(RUN_KEY)
    status = msi.wine.run(msi.pdh, "autostart", "status")
    assert "start at login enabled: HKCU" in status.stdout, status.stdout  # not "for another"


def test_uninstall_leaves_the_data(msi: Msi) -> None:
    entry = msi.uninstall_entries()[0]
    code = re.search(r"\{[0-9A-F-]{36}\}", entry)
    assert code
    msi.msiexec("/x", code.group(), log="uninstall-user.log")
    assert not (msi.folder / "pdh.exe").exists()
    assert not msi.menu.exists()
    assert "ProductionDataHub" not in msi.reg(RUN_KEY)
    assert msi.uninstall_entries() == []
    wait_until(lambda: not msi.running_from(msi.folder), "the tray stopped", 30)
    assert (msi.data / "pdh.toml").is_file() and list(msi.data.rglob("state.json"))


def test_per_machine_service(msi: Msi) -> None:
    config = hub_config(msi, "service", absolute_dirs=True)
    shutil.copy(msi.work / "user.db", msi.work / "service.db")
    msi.msiexec("/i", winpath(msi.packages[NEW]), "ALLUSERS=1", "SERVICE=1", "AUTOSTART=0",
                f"CONFIG={winpath(config)}", log="install-machine.log")
    folder = msi.drive_c / "Program Files" / "ProductionDataHub"
    assert (folder / "pdh.exe").is_file()
    pdh = winpath(folder / "pdh.exe")
    copied = msi.drive_c / "ProgramData" / "ProductionDataHub" / "pdh.toml"
    assert copied.read_text(encoding="utf-8") == config.read_text(encoding="utf-8")
    wait_until(lambda: msi.health(msi.api_port), "the service's API", 120, interval=1)
    assert "running" in msi.wine.run(pdh, "service", "status").stdout

    [entry] = msi.uninstall_entries()
    code = re.search(r"\{[0-9A-F-]{36}\}", entry)
    assert code
    msi.msiexec("/x", code.group(), log="uninstall-machine.log")
    assert not (folder / "pdh.exe").exists()
    assert not msi.health(msi.api_port)
    out = msi.wine.run("sc", "query", "ProductionDataHub").stdout
    assert "RUNNING" not in out and "STATE" not in out, out
    assert copied.is_file()  # the data (here: the config) stays


def test_signed_and_tamper_evident(msi: Msi) -> None:
    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["osslsigncode", "verify", "-CAfile", str(msi.ca), "-in",
                               str(path)], capture_output=True, text=True, timeout=60)

    signed = msi.packages[OLD]
    out = verify(signed)
    assert out.returncode == 0 and "Signature verification: ok" in out.stdout, out.stdout
    for exe in sorted((msi.work / "installed-exes").iterdir()):  # as N installed them
        result = verify(exe)
        assert result.returncode == 0 and "Signature verification: ok" in result.stdout, (
            exe, result.stdout)
    unsigned = verify(msi.packages[NEW])
    assert unsigned.returncode != 0

    tampered = msi.work / "tampered.msi"
    data = bytearray(signed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte inside the cabinet
    tampered.write_bytes(bytes(data))
    result = verify(tampered)
    assert result.returncode != 0, result.stdout
