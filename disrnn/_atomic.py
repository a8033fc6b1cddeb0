"""Write files and folders so that a failure never leaves a half-written result.

Every output of the package goes through :func:`atomic_file` or :func:`atomic_dir`: the
content is written under a hidden temporary name in the destination folder and renamed
into place only when the writer returned without error. A rename within one folder is
atomic on POSIX file systems, so a reader (or Snakemake) sees either nothing or the
complete file.

The temporary name records the writer, ``.<name>.<host>-<pid>.<random>.part``, so the
next write of the same path removes the leftovers of a writer that was killed
(``kill -9``) on this host, and never those of one still running.
:func:`writer_lock` keeps a second process from writing the same output at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OutputLockedError", "atomic_dir", "atomic_file", "writer_lock"]


class OutputLockedError(OSError):
    """Another process holds the writer lock of an output."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def _part_prefix(path: Path) -> str:
    return f".{path.name}.{_host()}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders of writers of ``path`` that died on this host.

    Returns:
        The removed paths.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)\.[^.]+\.part$")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for item in siblings:
        m = pattern.match(item.name)
        if m is None or _alive(int(m.group(1))):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_parent(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            f"cannot create the output folder {str(parent)!r}: {err.strerror}; "
            "choose a folder you can write to"
        ) from err
    if not os.access(parent, os.W_OK):
        raise PermissionError(
            f"the output folder {str(parent)!r} is not writable; choose a folder you can write to"
        )


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.

    Raises:
        PermissionError / OSError: the destination folder cannot be created or written.
    """
    path = Path(path)
    _check_parent(path)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual file mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it to ``path`` on success.

    An existing ``path`` is replaced only after the new content is complete. On any
    exception the temporary folder is removed.
    """
    path = Path(path)
    _check_parent(path)
    remove_stale_parts(path)
    tmp = Path(tempfile.mkdtemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; use the usual folder mode
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def writer_lock(path: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Hold the exclusive writer lock of ``path`` inside the block; yield the lock file.

    The lock is an ``flock`` on ``.<name>.lock`` beside ``path`` (removed at the end); the
    kernel releases it when its holder dies, so a killed writer never leaves ``path``
    locked. A second writer fails at once instead of writing the same output (or its
    checkpoint) beside the first.

    Args:
        path: the output file or folder; what: names it in the message ("fit folder").
    Raises:
        OutputLockedError: another process holds the lock (the message names it).
    """
    path = Path(path)
    _check_parent(path)
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputLockedError(
                f"the {what} {str(path)!r} is being written by {holder} (lock file "
                f"{str(lock)!r}); wait for that run to finish or stop it, then run again"
            ) from None
        try:  # the previous holder may have removed the file between our open and flock
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
