"""Send a step's log records, stdout and stderr (progress bars included) to one file.

The workflow's scripts wrap their one call in :func:`log_to_file`, so each job's log
under ``logs/`` holds everything the step said.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike, append: bool = False) -> Iterator[None]:
    """Route logging (INFO and above), stdout and stderr to ``path`` inside the block.

    Args:
        path: the log file; its folder must exist (Snakemake creates it).
        append: keep earlier content (a resumed fit adds to its first log).
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with open(path, "a" if append else "w") as log, redirect_stdout(log), redirect_stderr(log):
        logging.basicConfig(stream=log, level=logging.INFO, force=True, format=LOG_FORMAT)
        try:
            yield
        finally:
            for handler in root.handlers[:]:
                root.removeHandler(handler)
                handler.close()
            for handler in saved_handlers:
                root.addHandler(handler)
            root.setLevel(saved_level)
