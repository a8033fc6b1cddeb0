"""SelectConfig and the candidate partitions: what a model selection fits, validated.

No torch: the workflow builds a SelectConfig per session to check its ``select:`` block
before any job.

    SelectConfig(ranks=(4, 6), max_groups=2, seeds=2, epochs=30)
    integer_partitions(6, max_parts=4)   # 9 partitions, (6,), (5, 1), (4, 2), ... (3, 1, 1, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENUMERATE_UP_TO",
    "PARTITIONS_AT",
    "SelectConfig",
    "integer_partitions",
]

#: ranks up to this one get every partition into 2..max_groups groups when the config
#: lists none; beyond it the partitions must be listed (their number grows fast)
ENUMERATE_UP_TO = 8
#: which ranks get DisRNN partitions: only the rank K the rule's first step selects (the
#: only one the verdict reads), or every rank of the grid (each scored and reported)
PARTITIONS_AT = ("selected", "all")


def integer_partitions(n: int, max_parts: int | None = None) -> list[tuple[int, ...]]:
    """Every partition of ``n`` into at most ``max_parts`` positive parts, each in
    descending order, listed in reverse lexicographic order ((n,) first).

    Raises:
        ValueError: ``n`` < 1 or ``max_parts`` < 1.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    max_parts = n if max_parts is None else max_parts
    if max_parts < 1:
        raise ValueError(f"max_parts must be >= 1, got {max_parts!r}")

    def parts(rest: int, largest: int, left: int):
        if rest == 0:
            yield ()
            return
        if left == 0:
            return
        for first in range(min(rest, largest), 0, -1):
            for tail in parts(rest - first, first, left - 1):
                yield (first, *tail)

    return list(parts(n, n, max_parts))


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(
            f"{name} must be a list of positive integers such as [3, 3], got {value!r}"
        )
    out = tuple(value)
    if not out:
        raise ValueError(f"{name} must list at least one positive integer, got {value!r}")
    for v in out:
        _positive_int(f"every entry of {name}", v)
    return out


@dataclass(frozen=True)
class SelectConfig:
    """The grid of a model selection and how it is fitted.

    Attributes:
        ranks: the ranks K tried with lrRNN (distinct, sorted on construction).
        partitions: the DisRNN partitions tried, each a list of >= 2 group sizes summing
            to one of ``ranks`` (stored in descending order); None: every partition of
            each rank into 2..``max_groups`` groups, for ranks up to ``ENUMERATE_UP_TO``.
        max_groups: most groups of an enumerated partition (>= 2).
        seeds: S, fits per candidate (seeds 0..S-1; >= 2, the rule needs a standard
            error over seeds).
        epochs: maximum epochs of every DisRNN candidate (None: the fit options'). The
            lrRNN candidates keep the fit options' epochs: the rule compares every
            partition's likelihood with theirs, so they train as long as any fit (an
            lrRNN capped at 20 epochs stopped 0.35 and 4.2 nats per bin short of its
            converged validation likelihood on lorenz-thomas and coupled-gaussian).
        partitions_at: ``selected`` (DisRNN partitions only at the rank the rule's first
            step selects) or ``all`` (at every rank; the others are reported, not chosen).
    Raises:
        ValueError: naming the field, the bad value and what would be valid.
    """

    ranks: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    partitions: tuple[tuple[int, ...], ...] | None = None
    max_groups: int = 4
    seeds: int = 3
    epochs: int | None = None
    partitions_at: str = "selected"

    def __post_init__(self) -> None:
        ranks = _int_tuple("ranks", self.ranks)
        if len(set(ranks)) != len(ranks):
            raise ValueError(f"ranks must be distinct, got {list(ranks)}")
        object.__setattr__(self, "ranks", tuple(sorted(ranks)))
        _positive_int("max_groups", self.max_groups, minimum=2)
        _positive_int("seeds", self.seeds, minimum=2)
        if self.epochs is not None:
            _positive_int("epochs", self.epochs)
        if self.partitions_at not in PARTITIONS_AT:
            raise ValueError(
                f"partitions_at must be one of {', '.join(PARTITIONS_AT)}, got {self.partitions_at!r}"
            )
        if self.partitions is None:
            over = [k for k in self.ranks if k > ENUMERATE_UP_TO]
            if over:
                raise ValueError(
                    f"ranks {over} are above {ENUMERATE_UP_TO}, where partitions are not "
                    "enumerated; list the partitions to try, e.g. partitions: [[5, 5], [4, 3, 3]]"
                )
            return
        if isinstance(self.partitions, str | bytes) or not isinstance(self.partitions, Iterable):
            raise ValueError(
                f"partitions must be a list of group-size lists, got {self.partitions!r}"
            )
        parts = []
        for p in self.partitions:
            p = tuple(sorted(_int_tuple("partitions", p), reverse=True))
            if len(p) < 2:
                raise ValueError(f"every entry of partitions needs >= 2 groups, got {list(p)}")
            if sum(p) not in self.ranks:
                raise ValueError(
                    f"the partition {list(p)} sums to {sum(p)}, which is not one of the ranks "
                    f"{list(self.ranks)}; add {sum(p)} to ranks or drop the partition"
                )
            if p not in parts:
                parts.append(p)
        object.__setattr__(self, "partitions", tuple(parts))

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> SelectConfig:
        """The config of a ``select:`` block or parsed command line (None = the default).

        Raises:
            ValueError: an unknown key (naming the valid ones) or value.
        """
        opts = {k: v for k, v in dict(options or {}).items() if v is not None}
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(opts) - set(names))
        if unknown:
            raise ValueError(f"unknown select option(s) {unknown}; valid: {', '.join(names)}")
        return cls(**opts)

    def partitions_of(self, rank: int) -> list[tuple[int, ...]]:
        """The DisRNN partitions tried at ``rank`` (>= 2 groups each)."""
        if self.partitions is not None:
            return [p for p in self.partitions if sum(p) == rank]
        return [p for p in integer_partitions(rank, self.max_groups) if len(p) >= 2]

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds))

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["ranks"] = list(self.ranks)
        if self.partitions is not None:
            out["partitions"] = [list(p) for p in self.partitions]
        return out
