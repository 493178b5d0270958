"""``import`` of a graded MATH file with about 25,000 distinct LaTeX answers, then ``estimate``.

Before: ``import`` graded every row with math-verify to compare with the file's own grades
(``--check-rows`` larger than the file: the same code path).  After: it keeps the file's grades
and checks a seeded sample of 1,000 rows.  Either way ``estimate --problems`` clusters the wrong
answers by their canonical forms, which ``import`` leaves on disk for the rows it graded, so the
table also times ``estimate`` after each (what the user waits for in all).  Each row is one
whole ``ttcalloc`` process on the same input, in the same run, each with its own empty cache;
the samples and the curves of both are asserted identical.

Input: ``math_samples_varied.py`` (500 MATH500 problems x 128 synthetic answers, about 25,000
distinct answer strings, most of them LaTeX written for one problem).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import math_samples_varied
import polars as pl
from common import cli_seconds, machine

KS = "1,2,4,8,16,32,64"
ALL_ROWS = str(10**9)


def run() -> str:
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source, raw = math_samples_varied.write(tmp)
        problems = str(tmp / "problems.parquet")
        cli_seconds(["data", "math", "--source", str(source), "--out", problems])
        frame = pl.read_parquet(raw)
        loads: list[float] = []
        outputs: dict[str, list[Path]] = {"samples": [], "curves": []}
        for label, check, home in [
            ("before: every row graded (`--check-rows` all)", ALL_ROWS, "before"),
            ("after: 1,000 rows checked (default)", "1000", "after"),
        ]:
            env = {"TTCALLOC_HOME": str(tmp / home)}
            samples = tmp / f"s-{home}.parquet"
            curves = tmp / f"c-{home}.parquet"
            imp = ["import", str(raw), "--problems", problems, "--check-rows", check]
            t_import = cli_seconds([*imp, "--out", str(samples)], env=env)
            loads.append(os.getloadavg()[0])
            est = ["estimate", str(samples), "--problems", problems, "--ks", KS]
            t_est = cli_seconds([*est, "--out", str(curves)], env=env)
            loads.append(os.getloadavg()[0])
            rows.append(f"| {label} | {t_import:.1f} | {t_est:.1f} | {t_import + t_est:.1f} |")
            outputs["samples"].append(samples)
            outputs["curves"].append(curves)
        for kind, (first, second) in outputs.items():
            assert pl.read_parquet(first).equals(pl.read_parquet(second)), f"{kind} differ"

    lines = [
        "## import: a graded MATH file with 25,000 distinct answers",
        "",
        f"{frame.height:,} samples of the 500 MATH500 problems with the file's own `correct` "
        "column (`benchmarks/math_samples_varied.py`: "
        f"{frame['pred_answer'].n_unique():,} distinct answer strings, "
        f"{frame.drop_nulls('pred_answer').select('problem_id', 'pred_answer').unique().height:,}"
        f" distinct (problem, answer) pairs, accuracy {frame['correct'].mean():.3f}; the "
        "grading section's file has 4,401). `import` then `estimate --problems --ks "
        f"{KS}`, each a whole `ttcalloc` process with an empty cache; seconds. Both imports "
        "write the same samples (the file's grades) and both estimates the same curves "
        "(asserted). Load average after each step: "
        + ", ".join(f"{x:.1f}" for x in loads)
        + f" on {os.cpu_count()} cores (other work was running).",
        "",
        "| import | `import` | `estimate` after it | both |",
        "|---|---|---|---|",
        *rows,
        "",
        "`import` no longer grades every answer, but `estimate` still parses the wrong ones: it "
        "clusters each problem's wrong answers by math-verify's canonical form, and the forms "
        "are on disk only for the answers `import` graded. So part of the time moves from "
        "`import` to `estimate`; what is saved for good is parsing the correct answers and "
        "comparing every answer with its gold one. A second `estimate` of the same samples "
        "reads the forms from the cache. Files without a `correct` column are graded in full, "
        "as before. The two rows ran at different loads (above): read the ratio as rough.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stderr.write(machine() + "\n")
    print(run())
