"""The installed package's version, for ``pdh --version`` and the API's OpenAPI document."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "production-data-hub"
UNKNOWN = "0+unknown"


def package_version() -> str:
    """The version of the installed distribution (``0+unknown`` from a source tree that
    was never installed)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN
