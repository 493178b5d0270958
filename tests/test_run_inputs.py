"""``run``'s inputs taken as hostile: output paths that nest, policy folders edited by hand
(actions, units, state features, prices, caps, model feature names) and budgets in the wrong
unit.  Every refusal is one ``error:`` line, before any request."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import make_questions, run_cli, sim_pipeline, train_both, write_jsonl

from ttcalloc.stages.run.units import drift_warning


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("inputs")
    p = sim_pipeline(tmp, 40)
    p.update(train_both(p["alloc"], p["problems"], "1.5", tmp))
    return p


@pytest.fixture(scope="module")
def tokens(trained: dict[str, Path]) -> dict[str, Any]:
    """Policies of the same samples whose cost unit is tokens (prompt + completion)."""
    import polars as pl

    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    tmp = trained["tmp"] / "tokens"
    tmp.mkdir()
    curves = tmp / "curves.parquet"
    options = EstimateOptions(ks=(1, 2, 4), cost="tokens")
    estimate_curves(trained["tmp"] / "samples", curves, options, trained["problems"])
    one = float(pl.read_parquet(curves).filter(pl.col("k") == 1)["cost"].mean())
    budget = round(1.5 * one)
    solve_allocation(
        curves, tmp / "alloc.parquet", SolveOptions(budgets=(budget,)), trained["problems"]
    )
    out: dict[str, Any] = {"budget": budget, "one": one}
    out.update(train_both(tmp / "alloc.parquet", trained["problems"], budget, tmp))
    return out


def _questions(tmp: Path, n: int = 5) -> Path:
    rows = [{"question": f"What is {i}+{i + 3}?", "answer": str(2 * i + 3)} for i in range(n)]
    return write_jsonl(tmp / "q.jsonl", rows)


def _refused(r: object, *words: str) -> None:
    err = r.stderr  # type: ignore[attr-defined]
    assert r.exit_code != 0, err  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_out_and_samples_out_may_not_nest(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    q = _questions(tmp_path)
    base = ["run", trained[learner], q, "--model", "sim/medium", "--budget", "1.5", "--no-progress"]
    samples = tmp_path / "s.parquet"
    r = run_cli(*base, "--samples-out", samples, "--out", samples / "answers.parquet")
    _refused(r, "--out", "inside --samples-out")
    out = tmp_path / "a.parquet"
    r = run_cli(*base, "--out", out, "--samples-out", out / "samples")
    _refused(r, "--samples-out", "inside --out")
    # the same through a symlink to the samples folder
    samples.mkdir()
    (tmp_path / "link").symlink_to(samples)
    r = run_cli(*base, "--samples-out", samples, "--out", tmp_path / "link" / "a.parquet")
    _refused(r, "--out", "inside --samples-out")
    samples.rmdir()
    assert not samples.exists() and not out.exists()
    # beside each other they work, and estimate reads the samples folder
    r = run_cli(*base, "--out", out, "--samples-out", samples)
    assert r.exit_code == 0, r.stderr
    r = run_cli("estimate", samples, "--ks", "1", "--cost", "samples", "--out", tmp_path / "c.pq")
    assert r.exit_code == 0, r.stderr


# --- policy folders as input -----------------------------------------------------------------


def _edited(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "policy.json").read_text())
    edit(meta)
    (dst / "policy.json").write_text(json.dumps(meta))
    return dst


def _action(i: int, name: str, cost: float | None = None) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        m["actions"][i]["name"] = name
        if cost is not None:
            m["actions"][i]["cost"] = cost

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for key in head:
            m = m[key]
        m[last] = value

    return edit


def _swap_state(m: dict[str, Any]) -> None:
    s = m["state_features"]
    s[1], s[2] = s[2], s[1]


def _swap_features(m: dict[str, Any]) -> None:
    f = m["features"]
    f[0], f[1] = f[1], f[0]


HOSTILE = [
    ("imitate", _swap_features, "feature 0 is"),  # caught by the names stored in the models
    ("imitate", _action(2, "maj@100000"), "actions[2]"),  # maj@4's cost, another k
    ("imitate", _action(2, "maj@100000", 100000.0), "more than 1024 samples"),
    ("imitate", _action(0, "maj@0", 0.0), "actions[0].name"),
    ("imitate", _action(1, "maj@3"), "maj@3 costs 2 samples: expected 3"),
    ("imitate", _action(1, "maj@02"), "actions[1].name"),
    ("imitate", _action(1, "vote@2"), "actions[1].name"),
    ("imitate", _set("cost_unit", "bananas"), "cost_unit"),
    ("stop", _set("cost_unit", "sample"), "cost_unit"),
    ("stop", _swap_state, "state_features"),
    ("stop", _set("adaptive.sample_values", ["chars", "tokens"]), "adaptive.sample_values"),
    ("stop", _set("adaptive.sample_values", ["bogus"]), "adaptive.sample_values"),
    ("stop", _set("adaptive.lambda_lo", -1.0), "adaptive.lambda_lo"),
    ("stop", _set("adaptive.lambda_hi", -0.5), "adaptive.lambda_hi"),
    ("stop", _set("adaptive.cap", 1000), "adaptive.cap"),
    ("stop", _set("adaptive.checkpoints", [1, 2]), "adaptive.checkpoints"),
    ("stop", _set("adaptive.cap", 2000), "adaptive.cap"),
]


@pytest.mark.parametrize(("learner", "edit", "field"), HOSTILE)
def test_hostile_policy_fields_are_refused_before_any_draw(
    trained: dict[str, Path],
    tmp_path: Path,
    learner: str,
    edit: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    policy = _edited(trained[learner], tmp_path / "policy", edit)
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", policy, _questions(tmp_path), "--model", "sim/medium", "--budget", "1.5",
        "--out", out, "--no-progress",
    )  # fmt: skip
    _refused(r, "policy.json", field)
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()


@pytest.mark.parametrize(
    ("learner", "words"),
    [
        ("imitate", "actions[0]: maj@1 costs 1 tokens: expected at least 2"),
        ("stop", "budget: 1.5 tokens per question is less than one sample's least"),
    ],
)
def test_sample_counts_labelled_tokens_are_refused_by_run_and_serve(
    trained: dict[str, Path], tmp_path: Path, learner: str, words: str
) -> None:
    """Before, a policy trained in samples whose cost_unit said tokens was run and served at
    "1.5 tokens" per question (one sample costs about 150): its costs (maj@k: k) and budget are
    sample counts, not tokens."""
    from serve_process import start, stop

    policy = _edited(trained[learner], tmp_path / "policy", _set("cost_unit", "tokens"))
    out = tmp_path / "a.parquet"
    r = run_cli(
        "run", policy, _questions(tmp_path), "--model", "sim/medium", "--budget", "1.5",
        "--out", out, "--no-progress",
    )  # fmt: skip
    _refused(r, str(policy / "policy.json"), words)
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()
    state = tmp_path / "state"
    try:  # the child exits before it listens
        served = start(policy, state, "--model", "sim/medium", "--budget", "1.5")
    except RuntimeError as refused:
        log = str(refused)
    else:
        stop(served)
        pytest.fail(f"serve started: {served.log()}")
    assert log.startswith("serve exited with 1: "), log
    lines = [x for x in log.removeprefix("serve exited with 1: ").splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), log
    assert str(policy / "policy.json") in lines[0] and words in lines[0], log
    assert not state.exists()


@pytest.mark.parametrize(
    ("learner", "model"), [("stop", "gain-3.ubj"), ("imitate", "fold-1-model.ubj")]
)
def test_model_files_must_take_the_listed_features_in_order(
    trained: dict[str, Path], tmp_path: Path, learner: str, model: str
) -> None:
    folder = tmp_path / "policy"
    shutil.copytree(trained[learner], folder)
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(folder / model))
    names = list(booster.feature_names or [])
    assert names and names[-1] in ("extra_samples", "dollar_math")  # stored by train
    names[0], names[1] = names[1], names[0]
    booster.feature_names = names
    booster.save_model(str(folder / model))
    r = run_cli(
        "run", folder, _questions(tmp_path), "--model", "sim/medium", "--budget", "1.5",
        "--out", tmp_path / "a.parquet", "--no-progress",
    )  # fmt: skip
    _refused(r, model, "feature 0 is")


def test_run_never_draws_more_than_the_policys_limit_per_question() -> None:
    """The driver's own bound, whatever a policy (or a bug in its driver) asks for."""
    from ttcalloc.sampler.options import SampleOptions
    from ttcalloc.stages.run.driver import Driver
    from ttcalloc.stages.run.items import Item

    items = [Item(problem={"problem_id": str(i), "question": f"q{i}", "grader": "numeric",
                          "answer": None},
                  meta={}) for i in range(3)]  # fmt: skip
    driver = Driver(items, SampleOptions(model="sim/medium"), None, 1, "samples", 1.0, None, 4)
    for it in items:
        it.started = True
        driver.enqueue(it, list(range(100)))
    admitted: dict[str, int] = {}
    while driver.ready:
        request = driver.admit(driver.ready.popleft())
        if request is not None:
            admitted[request.problem_id] = admitted.get(request.problem_id, 0) + request.n
    assert admitted == {"0": 4, "1": 4, "2": 4}
    assert all(it.cut and {"cut_at_policy_limit": 4} in it.decisions for it in items)


DEAR = [
    {"name": "maj@1", "cost": 300.0},
    {"name": "maj@2", "cost": 600.0},
    {"name": "maj@4", "cost": 3000.0},
]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_action(2, "maj@100000"), "more than 1024 samples"),
        (_action(2, "maj@1000"), "(a sample costs at least 1 token)"),
        (_action(0, "maj@3"), "less than maj@2's"),
        (_set("actions", DEAR), "750 per sample"),
    ],
)
def test_token_unit_action_costs_are_checked_against_their_k(
    tokens: dict[str, Any], tmp_path: Path, edit: Callable[[dict[str, Any]], None], words: str
) -> None:
    policy = _edited(tokens["imitate"], tmp_path / "policy", edit)
    r = run_cli(
        "run", policy, _questions(tmp_path), "--model", "sim/medium", "--budget",
        tokens["budget"], "--out", tmp_path / "a.parquet", "--no-progress",
    )  # fmt: skip
    _refused(r, "policy.json", "actions[", words)


# --- budget units ------------------------------------------------------------------------------


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_a_budget_in_another_unit_than_the_policys_is_refused(
    tokens: dict[str, Any], tmp_path: Path, learner: str
) -> None:
    q = _questions(tmp_path)
    out = tmp_path / "a.parquet"
    base = ["run", tokens[learner], q, "--model", "sim/medium", "--out", out, "--no-progress"]
    # 1.5 meant as samples, read as tokens: far below the budget it was trained at
    _refused(run_cli(*base, "--budget", "1.5"), "--budget 1.5", "tokens", "trained at")
    far = str(tokens["budget"] * 20)
    _refused(run_cli(*base, "--budget", far), f"--budget {far}", "more than 10 times")
    _refused(
        run_cli(*base, "--budget", tokens["budget"], "--budget-unit", "samples"),
        "--budget-unit samples",
        "the policy counts cost in tokens",
    )
    _refused(run_cli(*base, "--budget", "1.5", "--budget-unit", "bogus"), "--budget-unit 'bogus'")
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()


def test_an_unknown_cost_unit_is_refused_by_run(trained: dict[str, Path], tmp_path: Path) -> None:
    policy = _edited(trained["stop"], tmp_path / "policy", _set("cost_unit", "unknown"))
    r = run_cli(
        "run", policy, _questions(tmp_path), "--model", "sim/medium", "--budget", "1.5",
        "--out", tmp_path / "a.parquet", "--no-progress",
    )  # fmt: skip
    _refused(r, "policy.json", "cost_unit is unknown")


def _drift_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("warning: realized mean cost")]


def test_a_realized_cost_far_from_the_budget_is_warned_of(
    tokens: dict[str, Any], trained: dict[str, Path], tmp_path: Path
) -> None:
    q = _questions(tmp_path)
    # confirmed in the policy's unit, a token budget this low runs, and overspends: one sample
    # per question costs far more than 1.5 tokens
    r = run_cli(
        "run", tokens["stop"], q, "--model", "sim/medium", "--budget", "1.5", "--budget-unit",
        "tokens", "--out", tmp_path / "a.parquet", "--no-progress", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    lines = _drift_lines(r.stderr)
    assert len(lines) == 1 and "x the budget 1.5 tokens" in lines[0], r.stderr
    assert "--no-pace" not in lines[0]
    result = json.loads(r.stdout)
    assert result["mean_cost"] > 1.1 * 1.5
    # --no-pace is a cascade's: a stop policy paces all the same, and the warning does not
    # blame it; a cascade run at its trained prices as they are names that first
    r = run_cli(
        "run", tokens["stop"], q, "--model", "sim/medium", "--budget", "1.5", "--budget-unit",
        "tokens", "--no-pace", "--out", tmp_path / "c.parquet", "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    lines = _drift_lines(r.stderr)
    assert len(lines) == 1 and "--no-pace" not in lines[0], r.stderr
    unpaced = drift_warning(0.012, 0.01, "usd", None, paced=False)
    assert unpaced is not None and "applied as they are (--no-pace)" in unpaced
    # a run that spends its budget within 10% says nothing
    q40 = write_jsonl(tmp_path / "q40.jsonl", make_questions(40, seed=3))
    r = run_cli(
        "run", trained["stop"], q40, "--model", "sim/medium", "--budget", "1.5",
        "--out", tmp_path / "b.parquet", "--no-progress", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert abs(json.loads(r.stdout)["mean_cost"] / 1.5 - 1) <= 0.1
    assert _drift_lines(r.stderr) == [], r.stderr


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_a_sample_budget_far_above_what_the_policy_can_draw_is_refused(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    q = _questions(tmp_path)
    out = tmp_path / "a.parquet"
    base = ["run", trained[learner], q, "--model", "sim/medium", "--out", out, "--no-progress"]
    # 480 meant as tokens, read as samples: the policy draws at most 4 per question
    _refused(run_cli(*base, "--budget", "480"), "--budget 480", "samples", "(4)")
    assert not out.exists()
    r = run_cli(*base, "--budget", "480", "--budget-unit", "samples")  # confirmed: runs
    assert r.exit_code == 0, r.stderr
    assert len(_drift_lines(r.stderr)) == 1  # and spends far less than 480


def test_two_runs_writing_the_same_answers_are_refused(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 25, point 7: two runs with the same --out and different --samples-out both paid and
    the last replaced the answers; the answers file is now locked for the whole run."""
    from ttcalloc.sampler.journal import hold_file

    q = _questions(tmp_path)
    out = tmp_path / "a.parquet"
    base = ["run", trained["imitate"], q, "--model", "sim/medium", "--budget", "1.5"]
    with hold_file(out):  # a first run is writing the answers
        r = run_cli(*base, "--no-progress", "--out", out, "--samples-out", tmp_path / "s2")
    _refused(r, "another run is writing", str(out))
    assert not out.exists() and not (tmp_path / "s2").exists()  # nothing drawn
    r = run_cli(*base, "--no-progress", "--out", out, "--samples-out", tmp_path / "s2")
    assert r.exit_code == 0, r.stderr
    assert not (tmp_path / ".a.parquet.lock").exists()  # the lock is gone with the run


def test_a_samples_folder_refuses_another_grader(trained: dict[str, Path], tmp_path: Path) -> None:
    """Issue 25, point 7: changing --grader on an existing samples folder reused samples asked
    with the other grader's prompt (and graded by it); now one line naming --grader, nothing
    drawn; the same grader again reuses them."""
    q = _questions(tmp_path)
    samples = tmp_path / "s"
    base = ["run", trained["imitate"], q, "--model", "sim/medium", "--budget", "1.5",
            "--no-progress", "--samples-out", samples]  # fmt: skip
    r = run_cli(*base, "--out", tmp_path / "a.parquet", "--grader", "numeric")
    assert r.exit_code == 0, r.stderr
    parts = sorted(p.name for p in samples.iterdir())
    r = run_cli(*base, "--out", tmp_path / "b.parquet", "--grader", "math")
    _refused(r, "--grader numeric", "numeric grader, not math")
    assert (
        sorted(p.name for p in samples.iterdir()) == parts and not (tmp_path / "b.parquet").exists()
    )
    r = run_cli(*base, "--out", tmp_path / "c.parquet", "--grader", "numeric")
    assert r.exit_code == 0, r.stderr


def test_a_numeric_policy_run_with_the_math_grader_answers(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 25, point 7: a numeric policy run with --grader math answered 0 of 40 (the
    simulated model ignored the math prompt's \\boxed{} request); it now answers as the prompt
    asks, so both graders score the same simulated answers alike, and the mismatch is warned."""
    import polars as pl

    q = _questions(tmp_path, n=12)
    acc = {}
    for grader in ("numeric", "math"):
        out = tmp_path / f"{grader}.parquet"
        r = run_cli("run", trained["imitate"], q, "--model", "sim/medium", "--budget", "1.5",
                    "--grader", grader, "--out", out, "--samples-out", tmp_path / grader,
                    "--no-progress")  # fmt: skip
        assert r.exit_code == 0, r.stderr
        df = pl.read_parquet(out)
        assert df["final_answer"].null_count() < df.height
        acc[grader] = df["correct"].cast(pl.Float64).mean()
        if grader == "math":
            assert "graded by math, while the policy was trained on answers graded by numeric" in (
                r.stderr
            )
    assert acc["math"] == acc["numeric"]
