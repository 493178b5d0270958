"""Prompt kinds in the cascade: agreement features against brute force, label-free; replays
that take the variants in turn; online states equal to replayed ones; import of variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import online_draws, run_cli, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.core import cascade as cc
from ttcalloc.core.prompt_kinds import KIND_FEATURES, kind_features
from ttcalloc.core.replays import replay


def _brute(ids: list[int], kinds: list[int]) -> list[list[float]]:
    """KIND_FEATURES after each prefix, by counting."""
    out = []
    for t in range(1, len(ids) + 1):
        pre = list(zip(ids[:t], kinds[:t], strict=True))
        text = {a: sum(1 for b, k in pre if b == a and k == 0) for a in set(ids) if a >= 0}
        prog = {a: sum(1 for b, k in pre if b == a and k == 1) for a in set(ids) if a >= 0}
        total = {a: text[a] + prog[a] for a in text}
        nt, npg = sum(1 for _, k in pre if k == 0), sum(1 for _, k in pre if k == 1)
        top_t, top_p = max(text.values(), default=0), max(prog.values(), default=0)
        top = max(total.values(), default=0)
        leads = [a for a in total if top > 0 and total[a] == top]
        agree = float("nan")
        if top_t > 0 and top_p > 0:
            agree = float(any(text[a] == top_t and prog[a] == top_p for a in text))
        in_t = max((text[a] for a in leads), default=0)
        in_p = max((prog[a] for a in leads), default=0)
        out.append(
            [
                npg / t,
                agree,
                in_t / nt if nt else float("nan"),
                in_p / npg if npg else float("nan"),
            ]
        )
    return out


samples = st.lists(st.tuples(st.integers(-1, 3), st.integers(0, 1)), min_size=1, max_size=9)


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=4), st.integers(0, 1000))
def test_kind_features_match_a_loop(problems: list, seed: int) -> None:
    ids = [[a for a, _ in p] for p in problems]
    kinds = [[k for _, k in p] for p in problems]
    rep = replay(ids, [[1.0] * len(p) for p in ids], orders=3, seed=seed, kinds=kinds)
    got = kind_features(rep)
    assert got.shape[-1] == len(KIND_FEATURES)
    assert rep.kind is not None
    for i, p in enumerate(ids):
        for r in range(3):
            drawn = rep.ids[i, r, : len(p)].tolist()
            kd = rep.kind[i, r, : len(p)].tolist()
            np.testing.assert_allclose(got[i, r, : len(p)], _brute(drawn, kd), equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(samples, st.permutations([0, 1, 2, 3]))
def test_kind_features_do_not_depend_on_which_answer_is_right(one: list, perm: list) -> None:
    """Renaming the answers (which one is correct, id 0, included) changes nothing: no label
    leaks into the state (an argmax over answer ids would favour the correct one in ties)."""
    ids = [a for a, _ in one]
    kinds = [k for _, k in one]
    renamed = [perm[a] if a >= 0 else a for a in ids]
    a = kind_features(replay([ids], [[1.0] * len(ids)], orders=1, shuffle=False, kinds=[kinds]))
    b = kind_features(replay([renamed], [[1.0] * len(ids)], orders=1, shuffle=False, kinds=[kinds]))
    np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.integers(0, 1000))
def test_replays_take_the_variants_in_turn(variants: list[int], seed: int) -> None:
    """Each order is a permutation of the samples; while every variant has samples left, each
    round of V draws has one sample of each (a rotation), as run draws them."""
    n = len(variants)
    rep = replay([list(range(n))], [[1.0] * n], orders=6, seed=seed, variants=[variants])
    again = replay([list(range(n))], [[1.0] * n], orders=6, seed=seed, variants=[variants])
    np.testing.assert_array_equal(rep.ids, again.ids)
    names = sorted(set(variants))
    counts = {v: variants.count(v) for v in names}
    full = min(counts.values())  # rounds in which every variant still has a sample
    for r in range(6):
        order = rep.ids[0, r, :n].tolist()
        assert sorted(order) == list(range(n))
        drawn = [variants[i] for i in order]
        for k in range(full):
            assert sorted(drawn[k * len(names) : (k + 1) * len(names)]) == names
        rotation = drawn[: len(names)]
        for k in range(full):  # the same rotation every round
            assert drawn[k * len(names) : (k + 1) * len(names)] == rotation


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.05, 0.5, np.inf]))
def test_online_decisions_with_prompt_kinds_follow_the_replayed_rule(seed: int, lam: float) -> None:
    """With the kinds in the state, ``decide_one`` on the samples as they arrive (each with its
    kind) takes the path :func:`simulate` takes on the recorded order."""
    from ttcalloc.learn.cascade import CascadePolicy, fit_cascade, predict, prepare
    from ttcalloc.learn.stopping import StopOptions

    ns = [6, 3]
    rng = np.random.default_rng(seed)
    p = 10
    votes = [[list(rng.integers(-1, 3, size=n)) for _ in range(p)] for n in ns]
    kinds = [[list(rng.integers(0, 2, size=n)) for _ in range(p)] for n in ns]
    costs = [[list(rng.uniform(0.5, 1.5, size=n) * (lv + 1) ** 3) for _ in range(p)] for lv, n in enumerate(ns)]  # fmt: skip
    train = [
        replay(votes[lv], costs[lv], orders=3, seed=seed + lv, variants=kinds[lv], kinds=kinds[lv])
        for lv in range(2)
    ]
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4), kinds=True)
    units = [1.0, 8.0]
    prep = prepare(train, None, lad, units)
    model, _ = fit_cascade(
        prep, lad, np.arange(p) % 2, StopOptions(folds=2, fit_orders=3, n_estimators=8)
    )
    policy = CascadePolicy(
        ["a", "b"], lad, units, [], None, model, cc.Calibration(lam, lam, 0.0, 0.0), {}
    )
    recorded = [
        replay(votes[lv], costs[lv], orders=1, shuffle=False, kinds=kinds[lv]) for lv in range(2)
    ]
    got = predict(model, prepare(recorded, None, lad, units), lad)
    assert got.gains is not None
    paths = cc.simulate(recorded, lad, got.gains, got.extra, got.usable, lam)
    for i, counts in enumerate(online_draws(policy, votes, costs, lam, kinds)):
        assert counts == list(paths.drawn[i, 0]), i


def test_import_keeps_prompt_variants_and_says_which_are_programs(tmp_path: Path) -> None:
    probs = write_jsonl(
        tmp_path / "p.jsonl", [{"id": str(i), "question": f"{i}+1?", "answer": str(i + 1)} for i in range(4)]
    )  # fmt: skip
    assert run_cli("data", "jsonl", "--source", probs, "--out", tmp_path / "problems.parquet").exit_code == 0  # fmt: skip
    rows = [
        {"problem_id": str(i), "pred_answer": str(i + (j % 2)), "prompt_variant": v}
        for i in range(4)
        for j, v in enumerate(["cot1", "pot1", "cot2", "pal"])
    ]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    base = ["import", src, "--problems", tmp_path / "problems.parquet"]
    r = run_cli(*base, "--out", tmp_path / "a.parquet")
    assert r.exit_code == 0, r.output
    assert "prompt variants: cot1, cot2 (text); pal, pot1 (program); program variants taken " in r.stderr  # fmt: skip
    df = read_artifact(tmp_path / "a.parquet", SAMPLES).df
    kinds = dict(zip(df["prompt_variant"], df["answer_from"], strict=True))
    assert kinds == {"cot1": "text", "cot2": "text", "pot1": "program", "pal": "program"}
    meta = read_artifact(tmp_path / "a.parquet", SAMPLES).meta
    recorded = {v["name"]: v for v in meta["params"]["prompt_variants"]}
    assert recorded["pal"] == {"name": "pal", "kind": "program", "label": "imported", "template": None}  # fmt: skip
    r = run_cli(*base, "--program-variants", "pot1", "--out", tmp_path / "b.parquet")
    assert r.exit_code == 0, r.output
    df = read_artifact(tmp_path / "b.parquet", SAMPLES).df
    assert set(df.filter(pl.col("answer_from") == "program")["prompt_variant"]) == {"pot1"}
    # one-line errors: a name the file lacks; program variants of a file without variants
    r = run_cli(*base, "--program-variants", "pot9", "--out", tmp_path / "c.parquet")
    assert r.exit_code != 0 and r.stderr.count("error:") == 1
    assert "--program-variants 'pot9': not a prompt variant" in r.stderr
    plain = write_jsonl(tmp_path / "plain.jsonl", [{k: v for k, v in x.items() if k != "prompt_variant"} for x in rows])  # fmt: skip
    r = run_cli("import", plain, "--problems", tmp_path / "problems.parquet", "--program-variants", "pot1", "--out", tmp_path / "d.parquet")  # fmt: skip
    assert r.exit_code != 0 and "has no prompt variant column" in r.stderr
    assert not (tmp_path / "c.parquet").exists() and not (tmp_path / "d.parquet").exists()
    # a variant column with holes, or a name run could not be given
    for i, bad in enumerate([None, "a=b", ""]):
        rows_bad = [dict(x, prompt_variant=bad if j == 0 else x["prompt_variant"]) for j, x in enumerate(rows)]  # fmt: skip
        r = run_cli("import", write_jsonl(tmp_path / f"bad{i}.jsonl", rows_bad), "--problems", tmp_path / "problems.parquet", "--out", tmp_path / f"bad{i}.parquet")  # fmt: skip
        assert r.exit_code != 0 and r.stderr.count("error:") == 1, r.stderr
        assert ("names no prompt variant on 1 of 16" if bad is None else "a name must be") in r.stderr  # fmt: skip


def test_guessed_kinds_and_checked_variants() -> None:
    from ttcalloc.artifacts.answering import variants_of
    from ttcalloc.common.errors import ArtifactError
    from ttcalloc.text.variants import guess_kind

    programs = ["pot", "pot1", "POT2", "pal_2", "program-a", "code"]
    texts = ["cot1", "potential", "codellama-cot", "palm_cot", "programmatic_cot"]
    assert [guess_kind(n) for n in programs] == ["program"] * len(programs)
    assert [guess_kind(n) for n in texts] == ["text"] * len(texts)
    ok = {"name": "a", "kind": "text", "label": "file:a:1", "template": "Q: {question}"}
    assert variants_of({"prompt_variants": [ok]}, "p") == [ok]
    for bad in (
        [dict(ok, template="no placeholder")],
        [dict(ok, template="{x} {question}")],
        [ok, dict(ok, kind="program")],  # the same name twice
        [dict(ok, kind="python")],
    ):
        with pytest.raises(ArtifactError, match=r"p: prompt_variants\["):
            variants_of({"prompt_variants": bad}, "p")


def test_train_uses_the_kinds_only_where_the_samples_have_both() -> None:
    from ttcalloc.common.errors import InputError
    from ttcalloc.stages.train_cascade import _use_kinds

    votes, costs = [[0, 1, 0]], [[1.0, 1.0, 1.0]]
    plain = [replay(votes, costs, orders=2), replay(votes, costs, orders=2)]
    one_kind = [replay(votes, costs, orders=2, kinds=[[0, 0, 0]]), plain[1]]
    some = [replay(votes, costs, orders=2, kinds=[[0, 1, 0]]), plain[1]]
    both = [some[0], replay(votes, costs, orders=2, kinds=[[1, 1, 0]])]
    assert _use_kinds(plain, None) is False and _use_kinds(one_kind, None) is False
    assert _use_kinds(some, None) is False  # a model run with variants it was not trained on
    assert _use_kinds(both, None) is True and _use_kinds(both, False) is False
    for reps in (plain, one_kind, some):
        with pytest.raises(InputError, match="--prompt-kinds: not every model"):
            _use_kinds(reps, True)


def test_simulated_backend_writes_programs_for_program_prompts(tmp_path: Path) -> None:
    """sim/ answers the built-in program prompt with a program setting ``ans``, which the
    sampler runs for the answer: each program sample's answer is its program's."""
    import re

    probs = write_jsonl(
        tmp_path / "p.jsonl", [{"id": str(i), "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    )  # fmt: skip
    assert run_cli("data", "jsonl", "--source", probs, "--out", tmp_path / "problems.parquet").exit_code == 0  # fmt: skip
    r = run_cli(
        "sample", tmp_path / "problems.parquet", "--model", "sim/strong", "--n", "4",
        "--prompt-variant", "cot=auto", "--prompt-variant", "pot=program",
        "--no-progress", "--out", tmp_path / "s",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    df = read_artifact(tmp_path / "s", SAMPLES).df
    programs = df.filter(pl.col("answer_from") == "program")
    assert programs.height > 0 and set(programs["prompt_variant"]) == {"pot"}
    for text, pred in programs.select("response", "pred_answer").iter_rows():
        m = re.search(r"ans = (None|'([^']*)')", text)
        assert m is not None, text
        assert pred == m.group(2)


def test_run_and_serve_refuse_kinds_without_variants_to_draw() -> None:
    from types import SimpleNamespace

    from ttcalloc.stages.run.asking import kinds_unrecorded

    variants = [{"name": "cot", "kind": "text", "label": "auto", "template": None}]
    kinds, plain = cc.Ladder((2, 1), kinds=True), cc.Ladder((2, 1))
    assert kinds_unrecorded(SimpleNamespace(ladder=kinds, info={}))
    assert not kinds_unrecorded(SimpleNamespace(ladder=kinds, info={"prompt_variants": variants}))
    assert not kinds_unrecorded(SimpleNamespace(ladder=plain, info={}))
    assert not kinds_unrecorded(SimpleNamespace(info={}))  # not a cascade


def test_stop_replays_take_the_variants_in_turn(tmp_path: Path) -> None:
    """`train --learner stop` and `evaluate` replay variant samples as `run` draws them: in
    turn (here variant a always right, b always wrong, so every order alternates 0 and 1)."""
    from ttcalloc.artifacts.sample_replays import ReplayGroup, load_sample_replays
    from ttcalloc.artifacts.schemas import CURVES, PROBLEMS

    probs = write_jsonl(
        tmp_path / "p.jsonl", [{"id": str(i), "question": f"{i}+1?", "answer": str(i + 1)} for i in range(4)]
    )  # fmt: skip
    assert run_cli("data", "jsonl", "--source", probs, "--out", tmp_path / "problems.parquet").exit_code == 0  # fmt: skip
    rows = [
        {
            "problem_id": str(i),
            "pred_answer": str(i + 1 if v == "a" else i + 7),
            "prompt_variant": v,
        }
        for i in range(4)
        for v in ["a"] * 5 + ["b"] * 5
    ]  # the samples of each variant recorded together: only the rotation interleaves them
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    r = run_cli("import", src, "--problems", tmp_path / "problems.parquet", "--out", tmp_path / "s.parquet")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    r = run_cli("estimate", tmp_path / "s.parquet", "--problems", tmp_path / "problems.parquet", "--holdout", "0", "--out", tmp_path / "c.parquet")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    meta = read_artifact(tmp_path / "c.parquet", CURVES).meta
    problems = read_artifact(tmp_path / "problems.parquet", PROBLEMS).df
    ids = sorted(problems["problem_id"].to_list())
    loaded = load_sample_replays(
        tmp_path / "s.parquet", problems, tmp_path / "problems.parquet", meta,
        [ReplayGroup(ids, "all", 3)], orders=20,
    )  # fmt: skip
    assert loaded.replays is not None, loaded.note
    got = loaded.replays[0].ids[:, :, :10]
    right = (got == 0).astype(int)
    assert (right[..., ::2] + right[..., 1::2] == 1).all()  # one of each variant in each pair
    assert (right[..., ::2] == right[..., :1]).all()  # and the same variant first throughout
    assert 0 < right[..., 0].mean() < 1  # the rotation starts with either
