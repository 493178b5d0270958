"""A cascade report's words: baselines that cannot spend a budget are named and marked, where
each method reaches the strongest model's accuracy is said honestly, each method has its own
colour (the same in every policy's subplot), and cascade training and evaluation show progress
on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli
from test_run_models import two_model_curves

from ttcalloc.stages.evaluate import cascade_text as ct


def _row(method: str, budget: float, cost: float, **extra: object) -> dict[str, object]:
    return {
        "method": method,
        "budget": budget,
        "accuracy": 0.5,
        "accuracy_lo": 0.4,
        "accuracy_hi": 0.6,
        "cost": cost,
        "cost_over_budget": cost / budget,
        "cascade_minus_this": None
        if method == "cascade"
        else {"diff": 0.3385, "lo": 0.3, "hi": 0.37},
        **extra,
    }


def test_a_baseline_that_cannot_spend_the_budget_is_named_and_marked() -> None:
    """The newcomer's $0.018: llama capped at 40 samples spends $0.00595; the report said
    'cascade - this +0.3385' and that every method met each budget."""
    rows = [
        _row("cascade", 0.018, 0.018),
        _row("MoT rule (tuned on train)", 0.018, 0.0179),  # within 5%: no note
        _row("llama-2-13b only", 0.018, 0.00595),
        _row("best single model (chosen on train)", 0.018, 0.00595, chosen="llama-2-13b only"),
        _row("cascade", 0.004, 0.004),
        _row("llama-2-13b only", 0.004, 0.0039),
    ]
    notes = ct.short_notes("c", rows, recalibrated=True)
    assert notes == [
        "c at $0.018: llama-2-13b only (the best single model chosen on train) $0.00595 per "
        "question (33%) spent less than the budget (even the costliest setting tuned on train "
        "spends no more on these questions), so 'cascade - this' there compares the cascade at "
        "$0.018 with fewer dollars, not at matched dollars."
    ], notes
    assert "tuned on train)" in ct.short_notes("c", rows, recalibrated=False)[0]
    head = ct.header("eval", 100, 30, True, rows)
    assert "every method recalibrated to meet each budget" not in head
    assert "some could not spend it" in head
    met = [r for r in rows if r["budget"] == 0.004]
    assert "every method recalibrated to meet each budget" in ct.header("eval", 100, 30, True, met)
    assert ct.short_notes("c", met, recalibrated=True) == []
    words = {"cascade": "x"}
    md = "\n".join(ct.markdown("c", ["llama-2-13b", "gpt-4"], 1, 0.9, 0.0198, rows, words))
    line = next(x for x in md.splitlines() if "| llama-2-13b only" in x and "$0.018" in x)
    assert "0.331 (under budget)" in line and "(this spent $0.00595, not $0.018)" in line, line
    mot = next(x for x in md.splitlines() if "MoT" in x)
    assert "under budget" not in mot and "this spent" not in mot


def test_where_each_method_reaches_the_strongest_accuracy() -> None:
    target, ref = 0.87893, 0.0198
    # bracketed: as before, linear in dollars between the budgets' points, and said so
    pts = [(0.018, 0.86), (0.020, 0.87865), (0.025, 0.8790)]
    got = ct.reach(pts, target)
    want = 0.020 + (target - 0.87865) / (0.8790 - 0.87865) * 0.005
    assert got["how"] == "interpolated" and got["cost"] == pytest.approx(want)
    assert ct.reach_share(pts, target, ref) == pytest.approx(want / ref)
    text = ct.reach_text(got, ref, 260)
    assert text.startswith(f"{want / ref:.0%}, interpolated in dollars between $0.02 (101%)")
    assert "accuracy 0.8787 and $0.025 (126%), accuracy 0.8790" in text, text
    # reached exactly at a budget's point; at the cheapest point (at most there)
    assert ct.reach_text(ct.reach([(0.01, 0.8), (0.02, 0.9)], 0.9), 0.02, 10) == "100%"
    at_most = ct.reach_text(ct.reach([(0.02, 0.88), (0.025, 0.9)], 0.879), 0.0198, 10)
    assert at_most.startswith("at most 101%: already at its cheapest budget"), at_most
    # never reached: how far short at its most dollars
    low = [(0.01, 0.80), (0.02, 0.87865)]
    assert ct.reach_share(low, target, ref) is None
    text = ct.reach_text(ct.reach(low, target), ref, 1000)
    assert text == (
        "not reached at the budgets evaluated: at its most dollars, $0.02 (101%), accuracy "
        "0.8787, 0.0003 short (0.28 of 1000 questions)"
    ), text


def test_each_method_has_one_colour_over_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two policies whose methods come in different orders (and one the other lacks): each
    method is drawn in the same colour in both subplots, the cascade blue, the methods'
    colours distinct."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttcalloc.stages.evaluate.cascade_plot import BEST, figure_colours, plot_dollars

    def rows(methods: list[str]) -> list[dict[str, object]]:
        return [
            {**_row(m, b, b * 0.99), "accuracy": 0.5 + 0.01 * i, "cost_over_budget": 0.99}
            for i, m in enumerate(methods)
            for b in (0.001, 0.002)
        ]

    strongest = {"model": "gpt-4", "cost": 0.01, "accuracy": 0.9}
    policies = {
        "a": {"rows": rows(["cascade", "MoT rule (tuned on train)", "llama-2-13b only", BEST]),
              "strongest": strongest, "models": ["llama-2-13b", "gpt-4"]},
        "b": {"rows": rows(["gpt-4 only", "llama-2-13b only", "cascade",
                            "MoT rule (tuned on train)"]),
              "strongest": strongest, "models": ["llama-2-13b", "gpt-4"]},
    }  # fmt: skip
    got = figure_colours(policies)
    assert got["cascade"] == "tab:blue" and BEST not in got
    assert len(set(got.values())) == len(got) == 4, got
    figures: list[Any] = []
    close = plt.close
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to read its lines
    plot_dollars(policies, tmp_path / "p.png")
    (fig,) = figures
    drawn = [{line.get_label(): line.get_color() for line in ax.get_lines()} for ax in fig.axes]
    for subplot in drawn:
        for method, colour in got.items():
            if method in subplot:
                assert subplot[method] == colour, (method, subplot)
    shared = set(drawn[0]) & set(drawn[1]) & set(got)
    assert shared == {"cascade", "MoT rule (tuned on train)", "llama-2-13b only"}
    assert "gpt-4 only" in drawn[1] and "gpt-4 only" not in drawn[0]
    close(fig)


def test_cascade_training_and_evaluation_show_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status lines on stderr (not a terminal) as the fits, budgets and evaluation go; stdout
    is the JSON alone; a baseline short of a budget is in the notes and the report."""
    monkeypatch.setenv("TTCALLOC_PROGRESS_SECONDS", "0.001")
    problems, _, curves = two_model_curves(tmp_path)
    policy = tmp_path / "pol"
    r = run_cli("train", curves, "--problems", problems, "--learner", "cascade", "--budget",
                "0.003", "--escalate-after", "1", "--folds", "2", "--n-estimators", "5",
                "--orders", "4", "--out", policy, "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    json.loads(r.stdout)
    # the summary tells the tuned baseline (in-sample) from the fallback rule (out of fold)
    assert "best single model tuned at the budget (in-sample)" in r.stderr, r.stderr
    assert "(cheap; evaluate's baseline)" in r.stderr, r.stderr
    assert "fallback cheap only, up to x" in r.stderr, r.stderr
    assert "training the cascade 2/2 (100%)" in r.stderr, r.stderr
    assert "| fitting the gain model, cap 4, escalating after 1" in r.stderr, r.stderr
    ev = run_cli("evaluate", f"c={policy}", "--problems", problems, "--recalibrate",
                 "--bootstrap", "100", "--out", tmp_path / "rep", "--json")  # fmt: skip
    assert ev.exit_code == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert "evaluating cascades 1/1 (100%)" in ev.stderr and "c at $0.003" in ev.stderr
    # the cheap model alone draws at most its 4 samples: far below $0.003
    notes = report["policies"]["c"]["notes"]
    assert any("cheap only" in n and "not at matched dollars" in n for n in notes), notes
    assert "not at matched dollars" in ev.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "(under budget)" in md and "some could not spend it" in md
