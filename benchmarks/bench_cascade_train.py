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


def run(repeat: int = 2) -> str:
    """The markdown section: old and new simulation, by default and with ``--cap 16``."""
    if not cd.SHARED.is_dir():
        return f"## train: the cascade learner\n\nSkipped: the shared data is not at {cd.SHARED}.\n"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cd.prepare_seed(tmp, 0, cd.SHARED / "date_3models_mot_samples.parquet")
        rows = []
        for label, cap in (("default (16 and the fit half)", None), ("--cap 16", 16)):
            best = {"old": float("inf"), "new": float("inf")}
            seen: dict[str, list[tuple[object, ...]]] = {}
            for i in range(repeat):
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
    lines = [
        "## train: the cascade learner, replay simulation old and new",
        "",
        "`benchmarks/bench_cascade_train.py`: the shared Date set (three models), split seed 0, "
        "test share 0.5, `train_cascade` in one process at budgets $0.002/0.004/0.006, with the "
        "simulation before 2026-12-03 (`legacy_cascade.py`: every state's option values "
        "computed up front) and today's (the live paths' states only), alternating; best of "
        f"{repeat}. Old and new wrote the same prices, train accuracies and caps.",
        "",
        "| train --learner cascade | old simulation | new | speed-up |",
        "|---|---|---|---|",
    ]
    for label, old, new in rows:
        lines.append(f"| {label} | {old:.1f} s | {new:.1f} s | {old / new:.1f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    print(f"Machine: {machine()}.", file=sys.stderr)
    print(run(a.repeat))


if __name__ == "__main__":
    main()
