"""How many CPU threads a fit's small dense operations use.

A lone fit's operations (a batch of 128 bins, a few latents, a PC table of 256 bins)
are too small to gain from threads: one paper-benchmark seed took 5.1-6.3 s on 2
threads against 5.9-6.1 s on 1, within this machine's run-to-run spread, and on a many-
core machine torch's default of one thread per core slows such steps down. So a lone
fit runs on one thread, and its numbers do not depend on the machine's thread count.
S seeds trained as one stack (or S rotation searches run together) make every operation
S times larger, and then threads pay: in five alternating runs, 10 paper-benchmark seeds
took 23.6-33.2 s (median 25.6) with 2 threads against 29.7-36.3 s (median 33.3) with 1,
most of the gain in the rotation search (median 10.6 s against 16.7 s;
``benchmarks/speed.py --threads``, 2026-12-07, this project's 2-core virtual machine,
whose second core is not always free). So a fit of S seeds
(``disrnn.fit.train.fit_seeds``, from its pre-fit to its last epoch) runs on one CPU
thread per seed, up to the threads torch was given (the workflow sets them from the
config's ``resources: fit: threads``). A stack's numbers
are reproducible at a given thread count and agree with its seeds' lone fits to float
rounding (``tests/test_seeds_together.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def stack_threads(parallel: int, available: int | None = None) -> int:
    """Threads for ``parallel`` seeds (or searches) run together: one per seed, at least
    1, at most ``available`` (default: ``torch.get_num_threads()``)."""
    if available is None:
        available = torch.get_num_threads()
    return max(1, min(int(parallel), int(available)))


@contextmanager
def threads_for(parallel: int) -> Iterator[int]:
    """Run the block with :func:`stack_threads` threads; restore torch's count after.
    Yields the number used."""
    before = torch.get_num_threads()
    n = stack_threads(parallel, before)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
