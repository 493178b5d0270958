"""``train --learner cascade`` on the shared Date set, the replay simulation old and new.

One split (seed 0, test share 0.5) prepared through the CLI (``data``, ``import``,
``estimate --prices examples/date_prices.json``), then ``train_cascade`` in this process at
three budgets, by default (both caps fit) and with ``--cap 16``, with the old simulation
(``legacy_cascade.py``) and today's, alternating; best of ``--repeat``.  Checks that old and new
write the same prices and train metrics.

    .venv/bin/python benchmarks/bench_cascade_train.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import cascade_date as cd
import legacy_cascade
from common import machine

from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

BUDGETS = (0.002, 0.004, 0.006)


def _policies(out: Path) -> list[tuple[object, ...]]:
    """Each budget's prices and train metrics (to compare old and new)."""
    got = []
    for b in BUDGETS:
        body = json.loads((out / f"b{b:g}" / "policy.json").read_text())
        c, m = body["cascade"], body["metrics"]
        got.append((c["lambda_lo"], c["lambda_hi"], c["p_lo"], m["train_accuracy"], m["caps"]))
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if not cd.SHARED.is_dir():
        raise SystemExit(f"the shared data is not at {cd.SHARED}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cd.prepare_seed(tmp, 0, cd.SHARED / "date_3models_mot_samples.parquet")
        rows = []
        for label, cap in (("default (16 and the fit half)", None), ("--cap 16", 16)):
            best = {"old": float("inf"), "new": float("inf")}
            seen: dict[str, list[tuple[object, ...]]] = {}
            for i in range(a.repeat):
                for which in ("old", "new"):
                    out = tmp / f"pol-{which}-{cap}-{i}"
                    opts = CascadeTrainOptions(budgets=BUDGETS, cap=cap)
                    patch = (
                        legacy_cascade.old_simulate()
                        if which == "old"
                        else contextlib.nullcontext()
                    )
                    with patch:
                        start = time.perf_counter()
                        train_cascade(tmp / "curves.parquet", tmp / "problems.parquet", out, opts)
                        best[which] = min(best[which], time.perf_counter() - start)
                    seen[which] = _policies(out)
                    print(f"{label}, {which}: {best[which]:.1f} s", file=sys.stderr)
            if seen["old"] != seen["new"]:
                raise SystemExit(f"{label}: old and new policies differ")
            rows.append((label, best["old"], best["new"]))
    print(f"Machine: {machine()}. Seed 0, budgets $0.002/0.004/0.006, best of {a.repeat}.\n")
    print("| train --learner cascade | old simulation | new | speed-up |")
    print("|---|---|---|---|")
    for label, old, new in rows:
        print(f"| {label} | {old:.1f} s | {new:.1f} s | {old / new:.1f}x |")
    print("\nOld and new wrote the same prices, train accuracies and caps.")


if __name__ == "__main__":
    main()
