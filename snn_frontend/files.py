"""Atomic file writing, the one helper every writer of the project uses.

A file is written to a temporary name next to its destination and renamed over it when
complete, so a full disk, a kill or an error never leaves a truncated file behind; a
failure is a `FileWriteError` naming the file and the OS's reason (an exit-2 error).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "FileWriteError"]


class FileWriteError(OSError):
    """A file could not be written (full disk, no permission): a user-environment error."""


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces `path`, on any error it
    is removed and the error is raised (OSError as FileWriteError)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    kwargs = {} if "b" in mode else {"encoding": "utf-8"}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
