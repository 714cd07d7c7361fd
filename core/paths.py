"""Paths as the user typed them, and the ``file:`` URIs SQLite accepts for them.

On Windows ``Path.resolve()`` asks the file system for the final path, which turns a
mapped drive (``P:\\data\\x.db``) into its UNC form (``\\\\server\\share\\data\\x.db``): a
different instance key and login command than the user wrote, and a URI that
``pathlib`` spells ``file://server/share/...``, which SQLite refuses ("invalid uri
authority"). So paths are made absolute without resolving, and SQLite URIs are built
here, for every form: a drive path, a UNC path, a ``\\\\?\\`` long path, a POSIX path.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from urllib.parse import quote, urlencode


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute (``~`` expanded, ``..`` folded), links and drives kept."""
    return Path(os.path.abspath(Path(path).expanduser()))


def sqlite_uri(path: str | os.PathLike[str] | PurePath, **params: str) -> str:
    """A ``file:`` URI naming ``path`` for ``sqlite3.connect(..., uri=True)``.

    A pure Windows or POSIX path object picks that platform's rules (the tests use
    both); anything else is a path of this platform, made absolute first.
    """
    if isinstance(path, PureWindowsPath | PurePosixPath) and not isinstance(path, Path):
        pure: PurePath = path
    else:
        pure = absolute(path)
    text = _windows_uri_path(PureWindowsPath(pure)) if isinstance(
        pure, PureWindowsPath) else pure.as_posix()
    uri = "file:" + quote(text, safe="/:")
    return f"{uri}?{urlencode(params)}" if params else uri


def _windows_uri_path(path: PureWindowsPath) -> str:
    text = str(path)
    if text.startswith("\\\\?\\UNC\\"):  # \\?\UNC\server\share\x.db
        text = "\\\\" + text[len("\\\\?\\UNC\\"):]
    elif text.startswith("\\\\?\\"):  # \\?\C:\x.db
        text = text[len("\\\\?\\"):]
    text = text.replace("\\", "/")
    if text.startswith("//"):
        # UNC: an empty authority, then the path //server/share/... (file:////server/...)
        return "//" + text
    if not path.drive:
        raise ValueError(f"not an absolute Windows path: {path}")
    return "///" + text  # file:///C:/dir/x.db


def database_key(path: str | os.PathLike[str] | PurePath) -> str:
    """A short, stable key naming one database file: its absolute path, hashed (letter
    case folded on Windows, where ``C:\\ERP\\x.db`` and ``c:\\erp\\X.DB`` are one file).

    The one hub of a database holds the lock of this key, and its default folders are
    named with it, so two databases never share a store, a state file or a log."""
    if isinstance(path, PureWindowsPath) and not isinstance(path, Path):
        text = str(path).lower()
    else:
        text = str(absolute(path))
        if os.name == "nt":
            text = os.path.normcase(text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def database_folder(path: str | os.PathLike[str] | PurePath) -> str:
    """The name of a database's own folder: readable (the file's name) and unique (its
    :func:`database_key`), e.g. ``production_analysis-3f2a9c01b7``."""
    stem = PureWindowsPath(path).stem if isinstance(path, PureWindowsPath) else Path(path).stem
    readable = _UNSAFE.sub("_", stem).strip("._ ")[:40] or "database"
    return f"{readable}-{database_key(path)}"


# Characters Windows refuses in a folder name (and control characters); letters of any
# script (Korean file names) are kept.
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
