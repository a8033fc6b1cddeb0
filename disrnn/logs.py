"""Send a step's log records, stdout and stderr (progress bars included) to one file.

The workflow's scripts wrap their one call in :func:`log_to_file`, so each job's log
under ``logs/`` holds everything the step said, and, when it fails, the error (type,
message and traceback) before the job exits non-zero: on a cluster the job log is the
only place a user finds it. The ``disrnn`` command logs to stderr
(:func:`log_to_console`).

Whatever reaches a log or the console through them passes :func:`redact` first: the
value of ``DANDI_API_KEY`` and anything that looks like an API token (``token <value>``,
as in an ``Authorization`` header a server may echo in an error body) is replaced by
``<redacted>``.

A job that ends without an error logs its last line from :func:`resource_line`: the CPU
seconds (imports included) and peak memory of its process, which is what a cluster
profile's ``mem_mb`` and ``runtime`` should cover.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout

__all__ = [
    "LOG_FORMAT",
    "RESOURCE_PREFIX",
    "RedactFilter",
    "log_to_console",
    "log_to_file",
    "redact",
    "resource_line",
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "<redacted>"
#: the start of the line :func:`resource_line` writes (benchmarks/default_run.py reads it)
RESOURCE_PREFIX = "resources: CPU"
#: the environment variables whose values never reach a log
SECRET_VARIABLES = ("DANDI_API_KEY",)
# "token <value>", "Bearer <value>", "api_key=<value>": a value of 16 or more
# token characters with a digit in it (so that "token in DANDI_API_KEY" stays readable)
_TOKEN = re.compile(
    r"(?i)\b(token|bearer|api[_-]?key)(\s*[:=]\s*|\s+)([\"']?)"
    r"(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}"
)


def redact(text: str) -> str:
    """``text`` with the value of every :data:`SECRET_VARIABLES` variable and every
    token-like ``token <value>`` replaced by ``<redacted>``."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", text)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text


class RedactFilter(logging.Filter):
    """A logging filter that rewrites a record's message with :func:`redact` (install it
    on a logger, e.g. a client library's, so that every handler sees the redacted text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:  # tracebacks included
        return redact(super().format(record))


class _RedactingStream:
    """A text stream that writes ``redact(text)`` to ``stream``."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name):  # flush, fileno, isatty, ...
        return getattr(self._stream, name)


def _handler(stream, level: int) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_RedactingFormatter(LOG_FORMAT))
    handler.setLevel(level)
    return handler


def log_to_console(level: int = logging.INFO) -> None:
    """Log records of ``level`` and above to stderr, redacted (the ``disrnn`` command);
    like :func:`logging.basicConfig`, nothing changes when the root logger has handlers."""
    logging.basicConfig(level=level, handlers=[_handler(sys.stderr, level)])


def _own_peak_mib(ru_maxrss: int) -> float:
    """Peak resident memory of this process (MiB): ``VmHWM`` of /proc/self/status where it
    exists, since ``ru_maxrss`` survives fork and exec on Linux (a job Snakemake starts
    locally would report Snakemake's own peak); else ``ru_maxrss`` (KiB; bytes on macOS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def resource_line() -> str | None:
    """``resources: CPU <s> s (user <s> + system <s>), peak memory <MiB> MiB``: the CPU
    seconds of this process and the children it waited for, since it started, and the
    peak resident memory of this process; None where the ``resource`` module does not
    exist (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    user, system = me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime
    peak_mib = _own_peak_mib(me.ru_maxrss)
    return (
        f"{RESOURCE_PREFIX} {user + system:.1f} s (user {user:.1f} + system {system:.1f}), "
        f"peak memory {peak_mib:.0f} MiB"
    )


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike, append: bool = False) -> Iterator[None]:
    """Route logging (INFO and above), stdout and stderr to ``path`` inside the block.

    An exception leaving the block is logged (``ERROR ... failed: <type>: <message>`` and
    its traceback) before it propagates, so the job's log holds the error; a block that
    ends normally logs :func:`resource_line` last.

    Args:
        path: the log file; its folder must exist (Snakemake creates it).
        append: keep earlier content (a resumed fit adds to its first log).
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with open(path, "a" if append else "w") as log:
        stream = _RedactingStream(log)
        with redirect_stdout(stream), redirect_stderr(stream):
            logging.basicConfig(level=logging.INFO, handlers=[_handler(stream, 0)], force=True)
            try:
                yield
                line = resource_line()
                if line is not None:
                    logging.getLogger("disrnn").info(line)
            except Exception as err:
                logging.getLogger("disrnn").error(
                    "failed: %s: %s", type(err).__name__, err, exc_info=err
                )
                raise
            finally:
                for handler in root.handlers[:]:
                    root.removeHandler(handler)
                    handler.close()
                for handler in saved_handlers:
                    root.addHandler(handler)
                root.setLevel(saved_level)
