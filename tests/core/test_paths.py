"""SQLite URIs for every path form a user can type, on Windows and POSIX (defect C of the
Windows issue: pathlib's URI of a UNC path, file://server/share/..., is refused)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from core.paths import absolute, sqlite_uri


@pytest.mark.parametrize(("path", "uri"), [
    (r"C:\data\production_analysis.db", "file:///C:/data/production_analysis.db"),
    (r"P:\공장\생산.db", "file:///P:/%EA%B3%B5%EC%9E%A5/%EC%83%9D%EC%82%B0.db"),
    (r"\\fileserver\erp\production_analysis.db", "file:////fileserver/erp/production_analysis.db"),
    (r"\\?\UNC\fileserver\erp\x.db", "file:////fileserver/erp/x.db"),
    (r"\\?\D:\long\x.db", "file:///D:/long/x.db"),
    (r"C:\odd #1\50% done?.db", "file:///C:/odd%20%231/50%25%20done%3F.db"),
])
def test_windows_forms(path: str, uri: str) -> None:
    assert sqlite_uri(PureWindowsPath(path)) == uri
    with_params = sqlite_uri(PureWindowsPath(path), mode="ro", immutable="1")
    assert with_params == uri + "?mode=ro&immutable=1"


def test_pathlib_gets_unc_wrong_and_we_do_not() -> None:
    unc = PureWindowsPath(r"\\fileserver\erp\x.db")
    assert unc.as_uri() == "file://fileserver/erp/x.db"  # an authority: SQLite refuses it
    assert sqlite_uri(unc).startswith("file:////fileserver/")


def test_a_relative_windows_path_is_refused() -> None:
    with pytest.raises(ValueError, match="not an absolute Windows path"):
        sqlite_uri(PureWindowsPath(r"data\x.db"))


def test_posix_paths_open(tmp_path: Path) -> None:
    odd = tmp_path / "odd #1" / "50% done?.db"
    odd.parent.mkdir()
    assert sqlite_uri(PurePosixPath("/a b/x.db"), mode="ro") == "file:/a%20b/x.db?mode=ro"
    conn = sqlite3.connect(sqlite_uri(odd, mode="rwc"), uri=True)
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    assert odd.exists()
    ro = sqlite3.connect(sqlite_uri(odd, mode="ro"), uri=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("CREATE TABLE u(x)")
    ro.close()


def test_absolute_keeps_links(tmp_path: Path) -> None:
    """resolve() would follow the link (on Windows: turn a mapped drive into UNC)."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "mapped"
    link.symlink_to(real, target_is_directory=True)
    assert (link / "x.db").resolve() == real / "x.db"
    assert absolute(link / "sub" / ".." / "x.db") == link / "x.db"
    assert absolute("~/x.db") == Path(os.path.expanduser("~")) / "x.db"
    assert absolute("x.db") == Path.cwd() / "x.db"
