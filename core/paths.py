"""Paths as the user typed them, and the ``file:`` URIs SQLite accepts for them.

On Windows ``Path.resolve()`` asks the file system for the final path, which turns a
mapped drive (``P:\\data\\x.db``) into its UNC form (``\\\\server\\share\\data\\x.db``): a
different instance key and login command than the user wrote, and a URI that
``pathlib`` spells ``file://server/share/...``, which SQLite refuses ("invalid uri
authority"). So paths are made absolute without resolving, and SQLite URIs are built
here, for every form: a drive path, a UNC path, a ``\\\\?\\`` long path, a POSIX path.
"""

from __future__ import annotations

import os
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
