"""Shared file storage named by one URL (``storage_url``, ``AGENTMESH_STORAGE_URL``): files a goal writes that
another machine's goal must read — the sample world's dataset versions.

A folder by default (the agentmesh home); ``s3://bucket/prefix`` (``pip install 'agentmesh[s3]'``) or any other
fsspec URL across machines. A relative folder is relative to the home, never to the working folder: a pool worker
runs each flow in a temporary one. DuckDB reads and writes remote files through the same fsspec filesystem
(``DuckDBPyConnection.register_filesystem``); credentials and endpoints come from the filesystem's own
configuration (for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, …).

    >>> Storage.from_url("", home=Path("/srv/agentmesh")).url("world/datasets/customers/v1.csv")
    '/srv/agentmesh/world/datasets/customers/v1.csv'
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.core.exceptions import ConfigError

if TYPE_CHECKING:
    import duckdb

__all__ = ["Storage", "check_storage_url"]

_LOCAL = (None, "file", "local")
# The extra that installs a protocol's filesystem, where agentmesh has one.
_EXTRAS = {"s3": "s3", "s3a": "s3"}


def _split(url: str) -> tuple[str | None, str]:
    protocol, sep, rest = url.partition("://")
    return (protocol.lower(), rest) if sep else (None, url)


def check_storage_url(url: str) -> None:
    """A one-line ConfigError for a storage URL no filesystem can serve (checked when settings load)."""
    protocol, rest = _split(url.strip())
    if protocol is None and (typo := re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/?(?!/)", url.strip())):
        # `s3:/bucket` or `s3:bucket` is a mistyped URL, not a folder named "s3:" under the home.
        raise ConfigError(f"storage_url {url!r} looks like a URL missing a slash: write {typo.group(1)}://…, or a "
                          "folder path")
    if protocol in _LOCAL:
        return
    from fsspec.registry import get_filesystem_class

    where = f"storage_url {url!r}"
    if not protocol or not rest.strip("/"):
        raise ConfigError(f"{where}: give a folder, s3://bucket/prefix or another fsspec URL")
    try:
        get_filesystem_class(protocol)
    except ValueError:
        raise ConfigError(f"{where}: unknown storage {protocol!r}; give a folder, s3://bucket/prefix or another "
                          "fsspec URL") from None
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = f"pip install 'agentmesh[{extra}]'" if extra else str(exc).splitlines()[0]
        raise ConfigError(f"{where}: {protocol}:// needs a package that is not installed: {hint}") from None


class Storage:
    """A root folder on one fsspec filesystem; files are named by paths relative to the root (``a/b.csv``)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(fs)

    @classmethod
    def from_url(cls, url: str, *, home: Path) -> Storage:
        """The storage a URL names; empty means ``home`` itself, a relative folder is under ``home``."""
        from fsspec.implementations.local import LocalFileSystem

        check_storage_url(url)
        protocol, rest = _split(url.strip())
        if protocol in _LOCAL:
            folder = Path(rest).expanduser() if rest else Path()
            return cls(LocalFileSystem(), str(folder if folder.is_absolute() else home / folder))
        from fsspec.core import url_to_fs

        try:
            fs, root = url_to_fs(url.strip())
        except Exception as exc:  # a filesystem that cannot be set up from this URL
            raise ConfigError(f"storage_url {url!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return cls(fs, root)

    def path(self, relative: str) -> str:
        """The filesystem path of a file under the root."""
        return f"{self.root}/{relative}" if relative else self.root

    def url(self, relative: str) -> str:
        """What DuckDB is given for a file: a local path, or the full URL of a remote one."""
        path = self.path(relative)
        return path if self.local else self.fs.unstrip_protocol(path)

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection that reads and writes this storage's URLs."""
        import duckdb

        con = duckdb.connect()
        if not self.local:
            con.register_filesystem(self.fs)
        return con

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.path(relative)))

    def read_bytes(self, relative: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(relative)))

    def put(self, local: Path, relative: str) -> None:
        """Copy a local file in."""
        self.fs.makedirs(self.path(relative).rpartition("/")[0], exist_ok=True)
        self.fs.put_file(str(local), self.path(relative))

    def move(self, source: str, target: str) -> None:
        """Move a file within the storage (a rename on a folder; copy and delete on an object store)."""
        self.fs.mv(self.path(source), self.path(target))

    def listdir(self, relative: str) -> list[str]:
        """The names directly under a folder ([] when there is none)."""
        try:
            return sorted(p.rstrip("/").rpartition("/")[2] for p in self.fs.ls(self.path(relative), detail=False))
        except FileNotFoundError:
            return []

    def remove_tree(self, relative: str) -> None:
        """Remove a folder and everything under it; nothing when it does not exist."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(relative), recursive=True)


def _protocols(fs: Any) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
