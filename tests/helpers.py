"""Small builders shared by tests."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ttcalloc.cli import app


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(*args: str) -> Any:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args])


GSM8K_ROWS = [
    {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3+4=7\n#### 7"},
    {"question": "A pen costs $2. How much do 5 pens cost?", "answer": "5*2=10\n#### 10"},
    {"question": "What is 1,000 + 250?", "answer": "#### 1,250"},
    {"question": "Half of 9?", "answer": "9/2 = 4.5\n#### 4.5"},
    {"question": "What is 12 * 12?", "answer": "#### 144"},
]


def make_questions(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Word problems of varied length and number count (harder when longer, for sim/)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        terms = [rng.randint(1, 10 ** rng.randint(1, 4)) for _ in range(rng.randint(2, 7))]
        filler = " Then something else happens in the story." * rng.randint(0, 6)
        q = f"Problem {i}: Sam adds {' and '.join(map(str, terms))}.{filler} What is the total?"
        rows.append({"question": q, "answer": f"#### {sum(terms)}"})
    return rows


def sim_pipeline(tmp: Path, questions: int, seed: int = 0) -> dict[str, Path]:
    """Problems (30% test) -> 8 simulated samples each -> maj@1,2,4 curves -> oracle at 1.5, 2.5."""
    from ttcalloc.stages import data
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.sample import SampleOptions, sample_problems
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    problems = tmp / "problems.parquet"
    data.build_problems(
        write_jsonl(tmp / "q.jsonl", make_questions(questions, seed=seed)),
        problems,
        "gsm8k",
        data.DataOptions(test_frac=0.3),
    )
    sample_problems(
        problems, tmp / "samples", SampleOptions(model="sim/medium", n=8, progress=False)
    )
    estimate_curves(
        tmp / "samples",
        tmp / "curves.parquet",
        EstimateOptions(ks=(1, 2, 4), cost="samples"),
        problems,
    )
    solve_allocation(
        tmp / "curves.parquet", tmp / "alloc.parquet", SolveOptions(budgets=(1.5, 2.5)), problems
    )
    return {
        "problems": problems,
        "curves": tmp / "curves.parquet",
        "alloc": tmp / "alloc.parquet",
        "tmp": tmp,
    }


def sum_problems(tmp: Path, n: int = 12, test_frac: float | None = None) -> Path:
    """A problems table of ``n`` sums ("What is i+(i+1)?", GSM8K-style answers) in ``tmp``."""
    from ttcalloc.stages import data

    rows = [{"question": f"What is {i}+{i + 1}?", "answer": f"#### {2 * i + 1}"} for i in range(n)]
    out = tmp / "problems.parquet"
    options = data.DataOptions(test_frac=test_frac) if test_frac is not None else None
    data.build_problems(write_jsonl(tmp / "p.jsonl", rows), out, "gsm8k", options)
    return out


def fake_server_sampler(
    problems: Path, out: Path, base: str, flush_every: int, stderr: int
) -> subprocess.Popen[str]:
    """``ttcalloc sample`` (6 samples a problem, 2 requests in flight) against the fake
    OpenAI server at ``base``, as a child process (to be killed mid-run)."""
    cmd = [
        sys.executable, "-m", "ttcalloc", "sample", str(problems), "--model", "openai/fake",
        "--api-base", base, "--n", "6", "--out", str(out), "--concurrency", "2",
        "--flush-every", str(flush_every), "--no-progress",
    ]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OPENAI_API_KEY": "sk-test-dummy-key"}
    return subprocess.Popen(cmd, env=env, stderr=stderr, text=True)


def train_both(alloc: Path, problems: Path, budget: Any, out_dir: Path) -> dict[str, Path]:
    """An imitate and a stop policy trained on ``alloc`` at ``budget``, in ``out_dir``."""
    out = {}
    for learner in ("imitate", "stop"):
        r = run_cli(
            "train", alloc, "--problems", problems, "--budget", budget,
            "--learner", learner, "--out", out_dir / learner,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        out[learner] = out_dir / learner
    return out


def heavy_tail_pass(n: int, seed: int, samples: int = 24) -> list[list[int]]:
    """Vote labels of ``n`` pass@k problems (0 = correct), 35% never solved; the others solved
    at a rate ~ Beta(1, 1.5); wrong answers among 1 to 7 per problem."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = 0.0 if rng.random() < 0.35 else rng.beta(1.0, 1.5)
        correct = rng.random(samples) < p
        wrong = rng.integers(1, 1 + rng.integers(1, 8), samples)
        out.append([int(v) for v in np.where(correct, 0, wrong)])
    return out


def small_imitate_policy(tmp: Path, questions: int = 30) -> Path:
    """A quick imitate policy (B = 1.5, 2 folds, 5 trees) on the small simulated pipeline."""
    from ttcalloc.stages.train import TrainOptions, train_policy

    p = sim_pipeline(tmp, questions)
    out = p["tmp"] / "policy"
    train_policy(p["alloc"], p["problems"], out, TrainOptions(budget=1.5, folds=2, n_estimators=5))
    return out


def with_variants(policy: Path, tmp: Path, variants: list[dict[str, Any]]) -> Path:
    """A copy of ``policy`` (as ``tmp / "policy"``) whose policy.json records ``variants``
    (its ``prompt_variants``)."""
    import shutil

    copy = tmp / "policy"
    shutil.copytree(policy, copy)
    info = json.loads((copy / "policy.json").read_text())
    info["prompt_variants"] = variants
    (copy / "policy.json").write_text(json.dumps(info))
    return copy


def wait_until(
    condition: Callable[[], object], what: Callable[[], str] | str, timeout: float = 60.0
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s saying ``what`` (a string,
    or a function giving one, e.g. a child's log) was awaited.  A slow or loaded machine only
    makes this wait longer, never changes what it waits for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"not within {timeout:g} s: {told}")
        time.sleep(0.02)


def signal_when(
    proc: subprocess.Popen[str], condition: Callable[[], bool], sig: int, what: str,
    timeout: float = 120.0,
) -> None:  # fmt: skip
    """Send ``sig`` to the child ``proc`` once ``condition`` holds; it is checked while the
    child is stopped (SIGSTOP), so the child cannot finish between the check and the signal.
    Fails saying ``what`` was awaited if the child exits first or after ``timeout`` s."""
    import signal

    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGSTOP)
        try:
            if proc.poll() is not None:
                raise AssertionError(f"the child exited ({proc.returncode}) before {what}")
            if condition():
                proc.send_signal(sig)
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {what}")
        finally:
            proc.send_signal(signal.SIGCONT)  # a no-op once the child is reaped
        time.sleep(0.005)


def online_draws(
    policy: Any,
    votes: list[list[list[int]]],
    costs: list[list[list[float]]],
    lam: float,
    kinds: list[list[list[int]]] | None = None,
) -> list[list[int]]:
    """Per problem, how many samples of each model ``decide_one`` draws at price ``lam`` when
    model ``lv``'s ``k``-th sample of problem ``i`` is ``votes[lv][i][k]`` (-1: no answer),
    costing ``costs[lv][i][k]``, of prompt kind ``kinds[lv][i][k]`` (1: program) if given."""
    from ttcalloc.learn.cascade_online import decide_one

    levels, problems = len(votes), len(votes[0])
    out = []
    for i in range(problems):
        drawn: list[tuple[Any, ...]] = []
        for _ in range(sum(len(v[i]) for v in votes) + 1):
            d = decide_one(policy, f"q{i}", drawn, price=lam)
            if d.stop:
                break
            lv = d.level
            k = sum(1 for x in drawn if x[0] == lv)
            v = votes[lv][i][k]
            sample: tuple[Any, ...] = (lv, None if v < 0 else str(v), costs[lv][i][k])
            if kinds is not None:
                sample += ("program" if kinds[lv][i][k] else "text",)
            drawn.append(sample)
        out.append([sum(1 for x in drawn if x[0] == lv) for lv in range(levels)])
    return out
