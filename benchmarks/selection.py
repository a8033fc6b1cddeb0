"""Selection recovery: does ``disrnn.selection.select`` find the true K and partition?

    python benchmarks/selection.py                                   # 3 presets x 5 seeds
    python benchmarks/selection.py --presets lorenz-thomas --seeds 2 --jobs 2
    python benchmarks/selection.py --ranks truth --jobs 2            # the partition step alone

For each preset and seed s: simulate the preset with seed s (the split of
``benchmarks/synthetic.py``: even trials train, every fifth odd trial val, the other odd
trials test), run the selection (lrRNN at every ``--ranks``, DisRNN partitions into at
most ``--max-groups`` groups at the selected rank, ``--fit-seeds`` seeds each, at most
``--epochs`` epochs per DisRNN, or the fit's own with ``none``), and compare its answer
with the truth: lorenz-thomas K = 6, 3 + 3; rotation-limitcycle K = 4, 2 + 2; the
coupled control (coupled-gaussian: two coupled Lorenz systems, 6 dimensions that do not
factorise) K = 6 and "no evidence for modules". ``--ranks truth`` gives each preset only
its true rank, which measures the partition step and the verdict alone. Prints one row
per selection (with every partition's likelihood above the rule's bar and above lrRNN
at K - 1, independence z, cross share and seed agreement) and the hits per preset (the target: >= 4
of 5).
Selections run in ``--jobs`` worker processes with one torch thread each. Seeded; a
benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from synthetic import session_dataset  # benchmarks/synthetic.py, beside this script

#: preset -> (true rank, true partition or None for "no evidence for modules")
TRUTH = {
    "lorenz-thomas": (6, (3, 3)),
    "rotation-limitcycle": (4, (2, 2)),
    "coupled-gaussian": (6, None),
}


def _run(task: dict) -> dict:
    import torch

    from disrnn.selection import SelectConfig, read_selection, select

    torch.set_num_threads(1)
    ds = session_dataset(task["preset"], task["seed"])
    cfg = SelectConfig(ranks=task["ranks"], max_groups=task["max_groups"],
                       seeds=task["fit_seeds"], epochs=task["epochs"])  # fmt: skip
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(task["keep"] or tmp) / f"{task['preset']}-{task['seed']}"
        out = select(ds, root / "sel", cfg, device="cpu")
        sel, cand = read_selection(out)
    k, part = TRUTH[task["preset"]]
    below = sel.get("reference_ll")  # lrRNN's mean at K - 1, the rule's former bar
    below = float("nan") if below is None else below  # (NaN is written as null)
    evidence = "; ".join(
        f"{r['partition']}: dLL {r['ll_mean'] - sel['partition_threshold']:+.2f} "
        f"(vs lrRNN K-1 {r['ll_mean'] - below:+.2f}), "
        f"z {r.get('pc_z', float('nan')):.1f}, cross {r.get('cross_share', float('nan')):.2f}, "
        f"agr {r.get('agreement', float('nan')):.2f}"
        for r in sel["partitions"]
    )
    modular = [f"{r['rank']} ({r['partition']})" for r in sel.get("ranks_with_partitions", [])
               if r["modules"]]  # fmt: skip
    evidence += f"; ranks with modules: {', '.join(modular) or 'none'}"
    got = None if sel["partition"] is None else tuple(sel["partition"])
    return {
        **task,
        "K": sel["rank"],
        "partition": "none" if got is None else "+".join(map(str, got)),
        "verdict": sel["verdict"],
        "hit": sel["rank"] == k and got == part,
        "verdict_hit": got == part,
        "rank_hit": sel["rank"] == k,
        "seconds": time.perf_counter() - t0,
        "n_fits": len(cand),
        "evidence": evidence,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", default=",".join(TRUTH), help="comma-separated presets")
    p.add_argument("--seeds", type=int, default=5, help="simulation seeds (N of them)")
    p.add_argument("--first-seed", type=int, default=0, help="the first simulation seed")
    p.add_argument("--ranks", default="2,4,6,8", help="ranks tried ('truth': the true one)")
    p.add_argument("--max-groups", type=int, default=3, help="most groups of a partition")
    p.add_argument("--fit-seeds", type=int, default=2, help="fits per candidate")
    p.add_argument(
        "--epochs",
        type=lambda v: None if v == "none" else int(v),
        default=20,
        help="most epochs of each DisRNN candidate ('none': the fit's own)",
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument(
        "--keep",
        default=None,
        help="keep each selection's folder (its fits) in KEEP/PRESET-SEED/sel",
    )
    args = p.parse_args(argv)

    def ranks(preset):
        if args.ranks == "truth":
            return (TRUTH[preset][0],)
        return tuple(int(v) for v in args.ranks.split(","))

    tasks = [
        {"preset": preset, "seed": s, "ranks": ranks(preset), "max_groups": args.max_groups,
         "fit_seeds": args.fit_seeds, "epochs": args.epochs, "keep": args.keep}
        for preset in args.presets.split(",")
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]  # fmt: skip
    t0 = time.perf_counter()
    print(
        "| preset | seed | K | partition | verdict | true K, partition found | s | "
        "partitions at K: dLL above the threshold, independence z, cross share, seed agreement |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:  # each row as soon as its selection ends
        for r in map(lambda f: f.result(), as_completed([pool.submit(_run, t) for t in tasks])):
            rows.append(r)
            print(f"| {r['preset']} | {r['seed']} | {r['K']} | {r['partition']} | "
                  f"{r['verdict']} | {'yes' if r['hit'] else 'no'} | {r['seconds']:.0f} | "
                  f"{r['evidence']} |",
                  flush=True)  # fmt: skip
    rows.sort(key=lambda r: (list(TRUTH).index(r["preset"]), r["seed"]))
    print(
        "\n| preset | truth | K right | partition (or no evidence) right | "
        "K and partition right (target >= 4 of 5) |"
    )
    print("|---|---|---|---|---|")
    for preset in dict.fromkeys(r["preset"] for r in rows):
        sel = [r for r in rows if r["preset"] == preset]
        k, part = TRUTH[preset]
        truth = f"K = {k}, " + ("no evidence" if part is None else "+".join(map(str, part)))
        print(f"| {preset} | {truth} | {sum(r['rank_hit'] for r in sel)} of {len(sel)} "
              f"| {sum(r['verdict_hit'] for r in sel)} of {len(sel)} "
              f"| {sum(r['hit'] for r in sel)} of {len(sel)} |")  # fmt: skip
    print(
        f"\nwall {time.perf_counter() - t0:.0f} s; ranks {args.ranks}, max groups "
        f"{args.max_groups}, {args.fit_seeds} fit seeds, {args.epochs} epochs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
