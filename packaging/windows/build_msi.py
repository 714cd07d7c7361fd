"""``make windows-msi``: a Windows Installer package (MSI) of the Windows zip, built on
Linux with Debian's ``wixl`` (msitools), optionally Authenticode-signed with
``osslsigncode``.

    python packaging/windows/build_msi.py [--zip dist/ProductionDataHub-<v>-win-amd64.zip]
        [--version V] [--out dist] [--sign-cert C --sign-key K | --sign-pfx P]
        [--timestamp-url URL]

The payload is the zip's ``ProductionDataHub/`` folder, file for file, plus
``installer\\msi_actions.py`` (the custom actions, run by the installed interpreter).
wixl has no ``heat``: this script writes the WiX source from the payload's file list,
one Component per folder (its files share the folder; the first file is the key path),
every Id and GUID derived from the file's path (uuid5), so the same payload gives the
same package tables; the UpgradeCode is fixed for ever, the ProductCode follows the
version (a new version is a major upgrade).

What the package does (docs/operations.md "The MSI"):
- per-user by default (no admin): ``%LOCALAPPDATA%\\Programs\\ProductionDataHub``;
  ``ALLUSERS=1`` per-machine: ``%ProgramFiles%\\ProductionDataHub``; ``INSTALLDIR=`` wins;
- Start-menu folder "Production Data Hub": the tray (``pdh-tray.exe``) and "Open dashboard";
- ``AUTOSTART`` (default 1): the login item ``pdh autostart enable`` writes;
- ``CONFIG=<pdh.toml>``: copied to where the hub reads its config;
- ``SERVICE=1`` (per-machine only): ``pdh.exe service install`` (deferred, as LocalSystem);
- MajorUpgrade; the chosen AUTOSTART / SERVICE / install folder remembered for upgrades
  (registry, read back by AppSearch); uninstall stops what runs from the folder and removes
  the service, the login item, files and shortcuts; the data folder stays.

Signing: with a certificate, ``pdh.exe`` and ``pdh-tray.exe`` are signed before they go
into the package, then the MSI itself; without one the build says it is unsigned.
"""

# ruff: noqa: E501  (the WiX templates below keep one XML element a line)
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FOLDER = "ProductionDataHub"
# Never change: Windows Installer knows the product by it (upgrades find the old one).
UPGRADE_CODE = uuid.UUID("6f1c2b9e-3a57-4d1e-9b8a-5c0f7e2d4a61")
MANUFACTURER = "Production Data Hub"
PRODUCT_NAME = "Production Data Hub"
MENU_FOLDER = "Production Data Hub"
ACTIONS_SCRIPT = "msi_actions.py"
PASSWORD_ENV = "PDH_SIGN_PASSWORD"

_T0 = time.monotonic()


def step(what: str) -> None:
    print(f"windows-msi [{time.monotonic() - _T0:.0f} s] {what}", flush=True)


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
               ["version"])


def msi_version(version: str) -> str:
    """ProductVersion: major.minor.build, numbers only (MSI compares these three)."""
    parts = version.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise SystemExit(f"windows-msi: version {version!r}: the MSI needs N.N.N "
                         "(numbers only; Windows Installer compares three fields)")
    if int(parts[0]) > 255 or any(int(p) > 65535 for p in parts[1:]):
        raise SystemExit(f"windows-msi: version {version!r}: major <= 255, others <= 65535")
    return ".".join(parts + ["0"] * (3 - len(parts)))


def ident(kind: str, rel: str) -> str:
    """An MSI identifier for a payload path: stable, short, always valid."""
    return f"{kind}_{hashlib.sha1(rel.encode()).hexdigest()[:24]}"


def guid(rel: str) -> str:
    return str(uuid.uuid5(UPGRADE_CODE, rel.lower())).upper()


# Signing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """osslsigncode with a certificate + key (PEM/DER) or a PKCS#12 file."""

    cert: Path | None = None
    key: Path | None = None
    pfx: Path | None = None
    password: str | None = None
    timestamp_url: str | None = None

    def sign(self, path: Path, description: str) -> None:
        creds = (["-pkcs12", str(self.pfx)] if self.pfx else
                 ["-certs", str(self.cert), "-key", str(self.key)])
        stamp = ["-ts", self.timestamp_url] if self.timestamp_url else []
        out = path.with_name(path.name + ".signed")
        with tempfile.NamedTemporaryFile("w", suffix=".pass") as secret:
            if self.password:  # from a file: not on a command line others can read
                secret.write(self.password)
                secret.flush()
                creds += ["-readpass", secret.name]
            done = subprocess.run(["osslsigncode", "sign", *creds, "-h", "sha256", "-n",
                                   description, *stamp, "-in", str(path), "-out", str(out)],
                                  capture_output=True, text=True)
        if done.returncode != 0:
            out.unlink(missing_ok=True)
            raise SystemExit(f"windows-msi: signing {path.name} failed:\n{done.stdout}"
                             f"{done.stderr}")
        os.replace(out, path)


def signer_from(args: argparse.Namespace) -> Signer | None:
    if args.sign_pfx and (args.sign_cert or args.sign_key):
        raise SystemExit("windows-msi: give --sign-pfx or --sign-cert/--sign-key, not both")
    if bool(args.sign_cert) != bool(args.sign_key):
        raise SystemExit("windows-msi: --sign-cert and --sign-key go together")
    if not (args.sign_pfx or args.sign_cert):
        return None
    if shutil.which("osslsigncode") is None:
        raise SystemExit("windows-msi: signing needs osslsigncode "
                         "(Debian: apt-get install osslsigncode)")
    return Signer(cert=args.sign_cert, key=args.sign_key, pfx=args.sign_pfx,
                  password=os.environ.get(PASSWORD_ENV) or None,
                  timestamp_url=args.timestamp_url)


# The WiX source ---------------------------------------------------------------------


class Wxs:
    """The .wxs text for a payload folder (see the module docstring)."""

    def __init__(self, payload: Path, version: str) -> None:
        self.payload = payload
        self.version = version
        self.lines: list[str] = []
        self.components: list[str] = []

    def add(self, line: str, depth: int) -> None:
        self.lines.append("  " * depth + line)

    def folder(self, path: Path, depth: int) -> None:
        rel = path.relative_to(self.payload).as_posix()
        files = sorted(p for p in path.iterdir() if p.is_file())
        if files:
            comp = ident("c", rel or ".")
            self.components.append(comp)
            self.add(f'<Component Id="{comp}" Guid="{guid(rel or ".")}" Win64="yes">', depth)
            for n, file in enumerate(files):
                file_rel = file.relative_to(self.payload).as_posix()
                key = ' KeyPath="yes"' if n == 0 else ""
                # wixl takes sources relative to the .wxs (beside the payload folder)
                source = f"{self.payload.name}/{file_rel}"
                self.add(f'<File Id="{self.file_id(file_rel)}" Name={quoteattr(file.name)} '
                         f'Source={quoteattr(source)}{key}/>', depth + 1)
            self.add("</Component>", depth)
        for sub in sorted(p for p in path.iterdir() if p.is_dir()):
            sub_rel = sub.relative_to(self.payload).as_posix()
            self.add(f'<Directory Id="{ident("d", sub_rel)}" Name={quoteattr(sub.name)}>',
                     depth)
            self.folder(sub, depth + 1)
            self.add("</Directory>", depth)

    # the few files the package refers to by name
    NAMED = {"pdh.exe": "F_pdh", "pdh-tray.exe": "F_pdh_tray",
             "python/pythonw.exe": "F_pythonw", f"installer/{ACTIONS_SCRIPT}": "F_actions"}

    def file_id(self, rel: str) -> str:
        return self.NAMED.get(rel, ident("f", rel))

    def text(self, icon: str) -> str:
        product_code = str(uuid.uuid5(UPGRADE_CODE, "product " + self.version)).upper()
        self.add('<?xml version="1.0" encoding="utf-8"?>', 0)
        self.add('<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">', 0)
        self.add(f'<Product Id="{product_code}" Name="{PRODUCT_NAME}" Language="1033" '
                 f'Codepage="1252" Version="{self.version}" Manufacturer="{MANUFACTURER}" '
                 f'UpgradeCode="{str(UPGRADE_CODE).upper()}">', 1)
        self.add('<Package InstallerVersion="500" Compressed="yes" InstallScope="perUser" '
                 f'Description="{PRODUCT_NAME} {self.version}" '
                 'Comments="Keeps the ERP production database indexed and served"/>', 2)
        self.add('<MediaTemplate EmbedCab="yes"/>', 2)
        self.add('<MajorUpgrade DowngradeErrorMessage="A newer version of '
                 f'{PRODUCT_NAME} is already installed."/>', 2)
        self.add(f'<Icon Id="pdh.ico" SourceFile={quoteattr(icon)}/>', 2)
        self.lines.extend("    " + line for line in PROPERTIES.strip("\n").splitlines())
        self.add('<Directory Id="TARGETDIR" Name="SourceDir">', 2)
        self.add('<Directory Id="LocalAppDataFolder">', 3)
        self.add('<Directory Id="UserPrograms" Name="Programs">', 4)
        self.add(f'<Directory Id="INSTALLDIR" Name="{FOLDER}">', 5)
        self.folder(self.payload, 6)
        self.add("</Directory>", 5)
        self.add("</Directory>", 4)
        self.add("</Directory>", 3)
        self.add('<Directory Id="ProgramFiles64Folder"/>', 3)
        self.add('<Directory Id="CommonAppDataFolder"/>', 3)
        self.add('<Directory Id="ProgramMenuFolder">', 3)
        self.add(f'<Directory Id="MenuDir" Name="{MENU_FOLDER}">', 4)
        self.lines.extend("          " + line for line in MENU.strip("\n").splitlines())
        self.add("</Directory>", 4)
        self.add("</Directory>", 3)
        self.add("</Directory>", 2)
        self.add(f'<Feature Id="Hub" Title="{PRODUCT_NAME}" Level="1">', 2)
        for comp in [*self.components, "c_menu"]:
            self.add(f'<ComponentRef Id="{comp}"/>', 3)
        self.add("</Feature>", 2)
        self.lines.extend("    " + line for line in ACTIONS.strip("\n").splitlines())
        self.add("</Product>", 1)
        self.add("</Wix>", 0)
        return "\n".join(self.lines) + "\n"


# Registry values that remember the choices of the first install for its upgrades,
# written by the install action (per-user under HKCU, per-machine under HKLM; wixl
# writes HKMU's root as 4, which Windows Installer does not know), read back by
# AppSearch.
REMEMBER_KEY = r"Software\ProductionDataHub\Installer"

PROPERTIES = rf"""
<Property Id="ARPPRODUCTICON" Value="pdh.ico"/>
<Property Id="ARPNOMODIFY" Value="1"/>
<Property Id="SAVED_AUTOSTART">
  <RegistrySearch Id="SavedAutostartUser" Root="HKCU" Key="{REMEMBER_KEY}" Name="Autostart" Type="raw"/>
</Property>
<Property Id="SAVED_AUTOSTART_M">
  <RegistrySearch Id="SavedAutostartMachine" Root="HKLM" Key="{REMEMBER_KEY}" Name="Autostart" Type="raw" Win64="yes"/>
</Property>
<Property Id="SAVED_SERVICE_M">
  <RegistrySearch Id="SavedServiceMachine" Root="HKLM" Key="{REMEMBER_KEY}" Name="Service" Type="raw" Win64="yes"/>
</Property>
<Property Id="SAVED_INSTALLDIR">
  <RegistrySearch Id="SavedDirUser" Root="HKCU" Key="{REMEMBER_KEY}" Name="InstallDir" Type="raw"/>
</Property>
<Property Id="SAVED_INSTALLDIR_M">
  <RegistrySearch Id="SavedDirMachine" Root="HKLM" Key="{REMEMBER_KEY}" Name="InstallDir" Type="raw" Win64="yes"/>
</Property>
<Condition Message="SERVICE=1 installs a service for all users: add ALLUSERS=1 (and run as administrator).">Installed OR NOT SERVICE="1" OR ALLUSERS="1"</Condition>
"""

MENU = rf"""
<Component Id="c_menu" Guid="{guid('menu')}" Win64="yes">
  <Shortcut Id="MenuTray" Name="{PRODUCT_NAME}" Description="The hub with its tray icon" Target="[#F_pdh_tray]" WorkingDirectory="INSTALLDIR" Icon="pdh.ico"/>
  <Shortcut Id="MenuDashboard" Name="Open dashboard" Description="The hub's dashboard in the browser" Target="[#F_pythonw]" Arguments="&quot;[#F_actions]&quot; open-dashboard" WorkingDirectory="INSTALLDIR" Icon="pdh.ico"/>
  <RemoveFolder Id="MenuDirRemove" On="uninstall"/>
</Component>
"""

# Custom actions. wixl has no SetDirectory/SetProperty elements, no component or feature
# conditions, no CopyFile and no util: extensions: type 51 actions set properties, and
# the rest is one EXE action of an installed file (type 18) each way: the installed
# interpreter with installer\msi_actions.py, which copies the config, writes the login
# item, runs `pdh.exe service install` / `service uninstall` and stops what runs from
# the folder.
HELPER = '"[#F_actions]"'
# What the install action needs, as one argument ("|" and '"' cannot be in a Windows
# path). A deferred EXE action's command line is formatted from the properties when
# Windows writes the script (Wine: when it runs the action, with the same properties).
INSTALL_DATA = ("autostart=[AUTOSTART]|service=[SERVICE]|config=[CONFIG]"
                "|config_file=[PDH_CONFIG_FILE]")
ACTIONS = rf"""
<CustomAction Id="SetDirMachine" Property="INSTALLDIR" Value="[ProgramFiles64Folder]{FOLDER}\"/>
<CustomAction Id="SetDirSavedUser" Property="INSTALLDIR" Value="[SAVED_INSTALLDIR]"/>
<CustomAction Id="SetDirSavedMachine" Property="INSTALLDIR" Value="[SAVED_INSTALLDIR_M]"/>
<CustomAction Id="SetAutostartSaved" Property="AUTOSTART" Value="[SAVED_AUTOSTART]"/>
<CustomAction Id="SetAutostartSavedM" Property="AUTOSTART" Value="[SAVED_AUTOSTART_M]"/>
<CustomAction Id="SetAutostartDefault" Property="AUTOSTART" Value="1"/>
<CustomAction Id="SetServiceSaved" Property="SERVICE" Value="[SAVED_SERVICE_M]"/>
<CustomAction Id="SetConfigFileMachine" Property="PDH_CONFIG_FILE" Value="[CommonAppDataFolder]ProductionDataHub\pdh.toml"/>
<CustomAction Id="SetConfigFileUser" Property="PDH_CONFIG_FILE" Value="[LocalAppDataFolder]ProductionDataHub\pdh\pdh.toml"/>
<CustomAction Id="SetInstallLocation" Property="ARPINSTALLLOCATION" Value="[INSTALLDIR]"/>
<CustomAction Id="PdhInstallUser" FileKey="F_pythonw" ExeCommand='{HELPER} install --scope user --data "{INSTALL_DATA}"' Execute="deferred" Impersonate="yes" Return="check"/>
<CustomAction Id="PdhInstallMachine" FileKey="F_pythonw" ExeCommand='{HELPER} install --scope machine --data "{INSTALL_DATA}"' Execute="deferred" Impersonate="no" Return="check"/>
<CustomAction Id="PdhUninstallUser" FileKey="F_pythonw" ExeCommand='{HELPER} uninstall --scope user' Execute="deferred" Impersonate="yes" Return="ignore"/>
<CustomAction Id="PdhUninstallMachine" FileKey="F_pythonw" ExeCommand='{HELPER} uninstall --scope machine' Execute="deferred" Impersonate="no" Return="ignore"/>
<InstallUISequence>
  <Custom Action="SetDirMachine" Sequence="51">ALLUSERS="1" AND NOT INSTALLDIR AND NOT SAVED_INSTALLDIR_M</Custom>
  <Custom Action="SetDirSavedMachine" Sequence="52">ALLUSERS="1" AND NOT INSTALLDIR AND SAVED_INSTALLDIR_M</Custom>
  <Custom Action="SetDirSavedUser" Sequence="53">NOT ALLUSERS AND NOT INSTALLDIR AND SAVED_INSTALLDIR</Custom>
</InstallUISequence>
<!-- explicit numbers: wixl places an After= of a custom action at the very end -->
<InstallExecuteSequence>
  <Custom Action="SetDirMachine" Sequence="51">ALLUSERS="1" AND NOT INSTALLDIR AND NOT SAVED_INSTALLDIR_M</Custom>
  <Custom Action="SetDirSavedMachine" Sequence="52">ALLUSERS="1" AND NOT INSTALLDIR AND SAVED_INSTALLDIR_M</Custom>
  <Custom Action="SetDirSavedUser" Sequence="53">NOT ALLUSERS AND NOT INSTALLDIR AND SAVED_INSTALLDIR</Custom>
  <Custom Action="SetAutostartSaved" Sequence="54">NOT AUTOSTART AND NOT ALLUSERS AND SAVED_AUTOSTART</Custom>
  <Custom Action="SetAutostartSavedM" Sequence="55">NOT AUTOSTART AND ALLUSERS="1" AND SAVED_AUTOSTART_M</Custom>
  <Custom Action="SetAutostartDefault" Sequence="56">NOT AUTOSTART</Custom>
  <Custom Action="SetServiceSaved" Sequence="57">NOT SERVICE AND ALLUSERS="1" AND SAVED_SERVICE_M</Custom>
  <Custom Action="SetConfigFileMachine" Sequence="58">ALLUSERS="1"</Custom>
  <Custom Action="SetConfigFileUser" Sequence="59">NOT ALLUSERS="1"</Custom>
  <Custom Action="SetInstallLocation" Sequence="1001"/>
  <Custom Action="PdhUninstallUser" Sequence="1501">REMOVE="ALL" AND NOT ALLUSERS="1"</Custom>
  <Custom Action="PdhUninstallMachine" Sequence="1502">REMOVE="ALL" AND ALLUSERS="1"</Custom>
  <Custom Action="PdhInstallUser" Sequence="6501">NOT REMOVE="ALL" AND NOT ALLUSERS="1"</Custom>
  <Custom Action="PdhInstallMachine" Sequence="6502">NOT REMOVE="ALL" AND ALLUSERS="1"</Custom>
</InstallExecuteSequence>
"""


# The build --------------------------------------------------------------------------


def payload_from_zip(zip_path: Path, work: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(work)
    folder = work / FOLDER
    if not (folder / "pdh.exe").is_file():
        raise SystemExit(f"windows-msi: {zip_path} has no {FOLDER}/pdh.exe")
    return folder


def build(zip_path: Path, out_dir: Path, version: str, signer: Signer | None,
          keep_wxs: bool = False) -> Path:
    if shutil.which("wixl") is None:
        raise SystemExit("windows-msi: needs wixl (Debian: apt-get install wixl)")
    msi_ver = msi_version(version)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"ProductionDataHub-{version}-x64.msi"
    with tempfile.TemporaryDirectory(prefix="pdh-winmsi-") as tmp:
        work = Path(tmp)
        step(f"the payload from {zip_path.name}")
        payload = payload_from_zip(zip_path, work)
        (payload / "installer").mkdir()
        shutil.copy2(HERE / ACTIONS_SCRIPT, payload / "installer" / ACTIONS_SCRIPT)
        if signer is not None:
            step("signing pdh.exe and pdh-tray.exe")
            for name in ("pdh.exe", "pdh-tray.exe"):
                signer.sign(payload / name, PRODUCT_NAME)
        shutil.copy2(ROOT / "icons" / "pdh.ico", work / "pdh.ico")
        wxs = work / "ProductionDataHub.wxs"
        wxs.write_text(Wxs(payload, msi_ver).text("pdh.ico"), "utf-8")
        if keep_wxs:
            shutil.copy2(wxs, target.with_suffix(".wxs"))
        step(f"wixl ({sum(1 for p in payload.rglob('*') if p.is_file())} files)")
        tmp_msi = work / target.name
        done = subprocess.run(["wixl", "-a", "x64", "-o", str(tmp_msi), str(wxs)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"windows-msi: wixl failed:\n{done.stdout}{done.stderr}")
        if signer is not None:
            step("signing the MSI")
            signer.sign(tmp_msi, f"{PRODUCT_NAME} {version}")
        shutil.move(tmp_msi, target)
    state = "signed" if signer else "UNSIGNED (no certificate given: SIGN_CERT/SIGN_KEY or SIGN_PFX)"
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB, version {msi_ver}, {state}")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    version = project_version()
    parser.add_argument("--zip", type=Path,
                        default=ROOT / "dist" / f"ProductionDataHub-{version}-win-amd64.zip",
                        help="the Windows zip (make windows-dist) whose folder is the payload")
    parser.add_argument("--version", default=version,
                        help="the package's version (default: the project's)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--sign-cert", type=Path, help="code-signing certificate (PEM/DER)")
    parser.add_argument("--sign-key", type=Path, help="its private key")
    parser.add_argument("--sign-pfx", type=Path,
                        help=f"or a PKCS#12 file (password from ${PASSWORD_ENV})")
    parser.add_argument("--timestamp-url", help="an RFC 3161 timestamp server "
                        "(e.g. http://timestamp.digicert.com); none: no timestamp")
    parser.add_argument("--keep-wxs", action="store_true",
                        help="also write the generated .wxs beside the MSI")
    args = parser.parse_args()
    if not args.zip.is_file():
        raise SystemExit(f"windows-msi: no {args.zip}: make windows-dist first")
    build(args.zip.absolute(), args.out.absolute(), args.version, signer_from(args),
          args.keep_wxs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
