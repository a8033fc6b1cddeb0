"""Model selection on the real sessions, and which brain areas each selected group lives in.

    python benchmarks/real_selection.py                          # alm and mtl
    python benchmarks/real_selection.py --sessions mtl --ranks 2,4 --workdir /tmp/rs

Per session of ``benchmarks/real.py`` (its binning: 20 ms spike counts, a seeded 25 % of
units held out, trials 60/20/20): ``disrnn.selection.select`` with ``--ranks`` (lrRNN),
DisRNN partitions into at most ``--max-groups`` groups at the selected rank,
``--fit-seeds`` seeds, at most ``--epochs`` epochs per DisRNN. Prints the evidence (lrRNN
validation log-likelihood per rank; per partition its likelihood against the bar,
independence z and seed agreement) and the verdict. Then, for the partition a
``groups: auto`` run would fit (selection.json ``fit_groups``), the unit maps of the
selection's own DisRNN fits of it on the test trials (``Fit.unit_groups``): the area x
group table (mean share of each group in the predicted activity of the area's units,
and the units per dominant group) of each seed, and the agreement of the seeds' unit
assignments (adjusted Rand index). Seeded; a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from real import SESSIONS, bin_dataset  # benchmarks/real.py, beside this script


def evidence_table(sel: dict) -> str:
    """The per-rank and per-partition evidence of one selection.json, as markdown."""
    tried = {r["rank"]: r for r in sel.get("ranks_with_partitions", [])}
    out = ["| K | lrRNN val LL per bin (mean +- sd) | seeds | best admissible partition "
           "| modules |", "|---|---|---|---|---|"]  # fmt: skip
    for r in sel["ranks"]:
        mark = " (selected)" if r["rank"] == sel["rank"] else ""
        t = tried.get(r["rank"])
        best = "–" if t is None else (t["partition"] or "none")
        mod = "–" if t is None else ("yes" if t["modules"] else "no")
        out.append(f"| {r['rank']}{mark} | {r['ll_mean']:.3f} +- {r['ll_sd']:.3f} | {r['n']} "
                   f"| {best} | {mod} |")  # fmt: skip
    bar = sel["partition_threshold"]
    out += [
        "",
        f"partitions at K = {sel['rank']}; bar: lrRNN at K - 1 = {sel['reference_rank']}: "
        f"{bar:.3f} nats per bin",
        "",
        "| partition | DisRNN val LL per bin | minus bar | independence z | seed agreement "
        "| admissible |",
        "|---|---|---|---|---|---|",
    ]
    for r in sel["partitions"]:
        out.append(
            f"| {r['partition']} | {r['ll_mean']:.3f} +- {r['ll_sd']:.3f} | "
            f"{r['ll_mean'] - bar:+.3f} | {r['pc_z']:.2f} | {r['agreement']:.3f} | "
            f"{'yes' if r['admissible'] else 'no'} |"
        )
    return "\n".join(out)


def area_tables(folder: Path, ds, groups: list[int], seeds: int) -> str:
    """Area x group tables of the selection's DisRNN fits of ``groups`` (test trials)."""
    from disrnn.evaluation.unit_maps import area_table, seed_agreement
    from disrnn.fit import load_fit
    from disrnn.selection.rule import partition_label

    label = partition_label(groups)
    maps, out = [], []
    for s in range(seeds):
        fit_dir = folder / "fits" / "DisRNN" / label / f"seed{s}"
        if not (fit_dir / "weights.pt").is_file():
            out.append(f"seed {s}: no fit of {label} in the selection")
            continue
        u = load_fit(fit_dir).unit_groups(ds)
        maps.append(u)
        t = area_table(u)
        names = [str(g) for g in t["group"].values]
        out += [
            f"seed {s}, DisRNN {label}:",
            "",
            "| area | units | " + " | ".join(f"share g{g}" for g in names)
            + " | " + " | ".join(f"dominant {lab}" for lab in t["label"].values) + " |",
            "|---" * (2 + len(names) + t.sizes["label"]) + "|",
        ]  # fmt: skip
        for a in t["brain_area"].values:
            shares = " | ".join(f"{v:.2f}" for v in t["area_share"].sel(brain_area=a).values)
            dom = " | ".join(str(int(v)) for v in t["area_dominant"].sel(brain_area=a).values)
            out.append(f"| {a} | {int(t['area_units'].sel(brain_area=a))} | {shares} | {dom} |")
        out.append("")
    if len(maps) >= 2:
        ag = seed_agreement(maps)
        if ag["ari_mean"] is None:  # every pair has a seed that puts all units in one group
            out.append("unit assignments across seeds: no ARI (a seed's assignment has one "
                       "group only, so the seeds cannot be compared)")  # fmt: skip
        else:
            out.append(f"unit assignments across seeds: ARI mean {ag['ari_mean']:.3f}, "
                       f"min {ag['ari_min']:.3f}")  # fmt: skip
    return "\n".join(out)


def run_session(name: str, args, work: Path) -> str:
    import torch

    from disrnn.data.io import load_dataset
    from disrnn.selection import SelectConfig, read_selection, select

    torch.set_num_threads(args.threads)
    path = bin_dataset(name, False, work / f"{name}.nc")
    ds = load_dataset(path)
    cfg = SelectConfig(ranks=tuple(int(v) for v in args.ranks.split(",")),
                       max_groups=args.max_groups, seeds=args.fit_seeds, epochs=args.epochs)  # fmt: skip
    t0 = time.perf_counter()
    out = select(path, work / f"{name}-selection", cfg, device="cpu", force=True)
    sel, _ = read_selection(out)
    head = (f"## {name} ({SESSIONS[name]['file']}; {ds.sizes['unit']} units, "
            f"{ds.sizes['trial']} trials): selection {time.perf_counter() - t0:.0f} s")  # fmt: skip
    parts = [head, "", sel["sentence"], "", evidence_table(sel), ""]
    parts.append(area_tables(out, ds, sel["fit_groups"], args.fit_seeds))
    return "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", default="alm,mtl", help="comma-separated: alm, mtl")
    p.add_argument("--ranks", default="2,4,6,8", help="lrRNN ranks tried")
    p.add_argument("--max-groups", type=int, default=2, help="most groups of a partition")
    p.add_argument("--fit-seeds", type=int, default=2, help="fits per candidate")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs per DisRNN")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--workdir", default=None, help="keep the datasets and selections here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.sessions.split(","):
            print(run_session(name, args, work), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
