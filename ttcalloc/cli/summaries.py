"""Rich summaries of stage results, printed on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from ttcalloc.common.console import err_console
from ttcalloc.common.wording import cost_text, interval, share_text, signed

if TYPE_CHECKING:
    from ttcalloc.stages.estimate import EstimateResult
    from ttcalloc.stages.solve import SolveResult
    from ttcalloc.stages.train import TrainResult


def print_estimate(result: EstimateResult) -> None:
    """Mean accuracy and cost per action, with counts and cross-fitting status."""
    half = "fit half" if result.cross_fitted else "in-sample"
    table = Table(title=f"curves ({half}; cost in {result.cost_unit})", title_justify="left")
    table.add_column("action")
    table.add_column("accuracy", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("problems", justify="right")
    for row in result.actions:
        table.add_row(
            escape(row["action"]),
            f"{row['accuracy']:.4f}",
            f"{row['cost']:.4g}",
            str(row["problems"]),
        )
    err_console.print(table)
    err_console.print(
        f"wrote [bold]{escape(str(result.out))}[/bold]: {result.problems} problems, "
        f"{result.samples} samples"
        + (f" ({result.failed_samples} failed requests left out)" if result.failed_samples else "")
        + f"; halves: {', '.join(result.halves)}"
    )
    for action, count in result.left_out.items():
        err_console.print(
            f"{escape(action)}: left out for {count} problem-halves with fewer than k samples"
        )
    if result.in_turn:
        err_console.print(
            "curves of samples drawn with several prompt variants take them in turn, as `run` "
            f"draws them (maj@k: mean over {result.in_turn['orders']} seeded orders)"
        )


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def print_solve(result: SolveResult) -> None:
    """One row per budget: lambda*, cost, objective, LP bound, and uniform at the same budget."""
    label = "in-sample" if result.in_sample else f"{result.half} half"
    known = result.cost_unit not in ("", "unknown")
    table = Table(
        title=(
            f"oracle allocation ({result.problems} problems, split {result.split}, {label}; "
            + (f"cost in {result.cost_unit})" if known else "cost unit not recorded)")
        ),
        title_justify="left",
    )
    for col in ("budget", "lambda*", "cost", "accuracy", "LP bound", "uniform", "gain"):
        table.add_column(col, justify="right")
    for s in result.solutions:
        table.add_row(
            f"{s['budget']:g}" + (f" {result.cost_unit}" if known else ""),
            _num(s["lambda"], ".4g"),
            _num(s["achieved_cost"], ".4g") + (" (slack)" if s["slack"] else ""),
            _num(s["objective"]),
            _num(s["lp_bound"]),
            _num(s["uniform_accuracy"]),
            _num(s["gain_vs_uniform"], "+.4f"),
        )
    err_console.print(table)
    err_console.print(f"wrote [bold]{escape(str(result.out))}[/bold]")


def _policy_cost_unit(folder: Path) -> str:
    """The cost unit a policy folder records (its budget is in it), "" when unreadable."""
    try:
        unit = json.loads((Path(folder) / "policy.json").read_text(encoding="utf-8"))["cost_unit"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return str(unit) if unit and unit != "unknown" else ""


def print_train(result: TrainResult) -> None:
    """Out-of-fold metrics of a trained policy against uniform at the same cost."""
    m = result.metrics
    if m.get("learner") == "cascade":
        print_cascade(result)
        return
    unit = _policy_cost_unit(result.out)
    scored = "in-sample curves" if m["in_sample"] else f"{m['scored_on']} half"
    fallback = bool(m.get("shrink_fallback"))
    table = Table(
        title=f"policy ({m['learner']}"
        + (", fell back to uniform allocation" if fallback else "")
        + f", out of fold, scored on {scored})",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("budget", f"{m['budget']:g} {unit}".strip()),
        ("expected cost (out of fold)", f"{m['oof_expected_cost']:.4g} {unit}".strip()),
        ("cost / budget", _num(m["oof_cost_over_budget"], ".3f")),
    ]
    if "oof_imitation_accuracy" in m:
        rows.append(("imitation accuracy", f"{m['oof_imitation_accuracy']:.3f}"))
    else:
        source = f" ({m['cap_source']})" if m.get("cap_source") else ""
        rows.append(("most samples drawn", f"{m['cap']}{source}"))
        used = ", ".join(m.get("sample_values", [])) or "none"
        if m.get("sample_values_oof_gain") is not None:
            gain = f"{m['sample_values_oof_gain']:+.4f} ± {m['sample_values_oof_se']:.4f}"
            if m.get("sample_values"):
                used += f" (kept: {gain} out of fold)"
            else:
                used += f" (left out {', '.join(m.get('sample_values_available', []))}: {gain})"
        rows.append(("per-sample signals", used))
        if m.get("price_margin_se"):
            z, se = m["price_margin_se"], m["train_cost_se"]
            rows.append(
                (
                    f"train cost at the prices ({z:g} s.e. = {z * se:.3g} to spare)",
                    f"{m['train_expected_cost']:.4g} {unit}".strip(),
                )
            )
    rows += [
        ("accuracy", f"{m['oof_accuracy']:.4f}"),
        ("uniform at the same cost", _num(m["uniform_accuracy_same_cost"])),
        (
            "gain vs uniform" + (" (fallback: the hash's pick)" if fallback else ""),
            "-" if m["gain_vs_uniform"] is None else signed(m["gain_vs_uniform"]),
        ),
    ]
    if "oracle_accuracy" in m:
        rows.append(("oracle (labels)", f"{m['oracle_accuracy']:.4f}"))
    for k, v in rows:
        table.add_row(k, v)
    err_console.print(table)
    err_console.print(
        f"wrote [bold]{escape(str(result.out))}[/bold] ({m['train_problems']} training problems)"
    )


def _budget_text(budget: float, unit: str) -> str:
    """``$0.004 per question`` in dollars, else ``4 samples`` (the budget and its unit)."""
    return f"${budget:g} per question" if unit == "usd" else f"{budget:g} {unit}"


def _print_strongest(strongest: dict[str, Any], unit: str) -> None:
    """The share of the strongest model's cost at which each policy reaches its accuracy."""
    table = Table(
        title=(
            f"share of {strongest['model']}'s cost at its accuracy ({strongest['action']}: "
            f"{strongest['accuracy']:.4f} at {cost_text(strongest['cost'], unit, '.4g')})"
        ),
        title_justify="left",
    )
    for col in ("policy", "share", "cost", "how"):
        table.add_column(col, justify="left" if col in ("policy", "how") else "right")
    for name, e in strongest["policies"].items():
        table.add_row(
            escape(name), share_text(e), cost_text(e["cost"], unit, ".4g"), escape(e["how"])
        )
    err_console.print(table)


def print_report(report: dict[str, Any]) -> None:
    """One table per budget: accuracy, cost, gain vs uniform with its interval, regret."""
    pols = report.get("policies")
    if isinstance(pols, dict) and all(isinstance(p, dict) and "rows" in p for p in pols.values()):
        print_cascade_report(report)
        return
    from rich import box

    from ttcalloc.stages.evaluate.render import label, realized

    unit = report["cost_unit"]
    for budget in report["budgets"]:
        table = Table(
            title=(
                f"budget {_budget_text(budget, unit)}{realized(report['policies'], budget)}: "
                f"{report['problems']['test']} test problems, "
                f"{report['scored_on'].split(', ')[-1]}"
            ),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 1),
        )
        table.add_column("policy", no_wrap=True)
        cost_col = "$/question" if unit == "usd" else "cost"
        for col in ("accuracy", cost_col, "gain vs uniform, 95% CI", "regret", "share"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in report["policies"]:
            if r["budget"] != budget:
                continue
            ci = r["gain_vs_uniform_ci"]
            table.add_row(
                escape(label(r).replace("upper bound", "bound").replace(" (fallback)", "*")),
                f"{r['accuracy']:.4f}",
                cost_text(r["cost"], unit),
                "-"
                if r["gain_vs_uniform"] is None
                else signed(r["gain_vs_uniform"], 3)
                + (f" {interval(ci[0], ci[1], 3).replace(', ', ',')}" if ci else ""),
                _num(r["regret"], ".3f"),
                _num(r["oracle_gain_share"], ".2f"),
            )
        err_console.print(table)
    if any((r.get("params") or {}).get("uniform_fallback") for r in report["policies"]):
        err_console.print(
            "* fell back to uniform allocation when trained: a hash of each question, not its "
            "features, picks the questions that get the costlier action (see the notes)"
        )
    if report.get("strongest"):
        _print_strongest(report["strongest"], unit)
    for note in report["notes"]:
        err_console.print(f"note: {escape(note)}")
    err_console.print(
        f"wrote [bold]{escape(report['out'])}/[/bold] (report.md, report.json, metrics.parquet"
        + (f", {escape(Path(report['plot']).name)})" if report.get("plot") else ")")
    )


def _acc(a: float | None) -> str:
    return "-" if a is None else f"{a:.3f}"


def print_cascade(result: TrainResult) -> None:
    """A cascade's train metrics: dollars, accuracy, how often it reaches each model, and the
    baselines tuned on the same train replays."""
    from ttcalloc.core.cascade_baselines import best_tuned

    m = result.metrics
    table = Table(
        title=f"policy (cascade, {' -> '.join(m['models'])}; on the train replays, "
        + ("in-sample)" if m.get("in_sample") else "out of fold)"),
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("budget", f"${m['budget']:.5g} per question"),
        ("expected dollars per question", f"${m['train_expected_cost']:.5g}"),
        ("accuracy (train replays)", f"{m['train_accuracy']:.3f}"),
    ]
    for model in m["models"]:
        rows.append(
            (
                f"  {model}",
                f"reached by {m['reached'][model]:.0%}, {m['mean_samples'][model]:.2f} samples",
            )
        )
    choice = m.get("cap_choice")
    if choice:
        accs = ", ".join(
            f"{max(c)}: {a:.3f}"
            for c, a in zip(choice["caps"], choice["oof_accuracy"], strict=True)
        )
        rows.append(("cap per model (out-of-fold accuracy)", f"{max(m['caps'])} ({accs})"))
    esc = m.get("escalate_choice")
    if esc:
        accs = ", ".join(
            f"{c}: {a:.3f}" for c, a in zip(esc["candidates"], esc["oof_accuracy"], strict=True)
        )
        rows.append(("escalate after (out-of-fold accuracy)", f"{esc['chosen']} ({accs})"))
    elif m.get("escalate_after", 1) != 1:
        rows.append(("escalate after", f"{m['escalate_after']} samples (--escalate-after)"))
    rule = m.get("rule_choice")
    if rule:
        acc, labels = rule["oof_accuracy"], rule["labels"]
        parts = [f"learned: {_acc(acc['learned'])}"]
        # the best single model as a fallback rule, chosen and scored out of fold (not the
        # tuned baseline of the row below, which is in-sample)
        parts += [
            f"{'fallback ' if k == 'single' and acc['learned'] is not None else ''}"
            f"{labels[k]}: {_acc(acc.get(k))}"
            for k in labels
        ]
        chosen = labels.get(rule["chosen"], rule["chosen"])
        rows.append(("gains (out-of-fold accuracy)", f"{chosen} ({', '.join(parts)})"))
    mot = m.get("mot")
    if mot:
        rows.append(("MoT rule tuned at the budget (in-sample)", mot_label(mot, m["models"])))
    singles = m.get("single", {})
    if (best := best_tuned(singles)) is not None:
        rows.append(
            (
                "best single model tuned at the budget (in-sample)",
                f"{singles[best]['train_accuracy']:.3f} ({best}; evaluate's baseline)",
            )
        )
    for k, v in rows:
        table.add_row(k, v)
    err_console.print(table)


def print_cascade_report(report: dict[str, Any]) -> None:
    """Each cascade against the baselines its training tuned, in dollars, on the test split."""
    from ttcalloc.stages.evaluate.cascade_text import is_short, method_label

    for name, pol in report["policies"].items():
        strong = pol["strongest"]
        table = Table(
            title=f"{name}: {' -> '.join(pol['models'])} (test split; {strong['model']} one "
            f"sample: {strong['accuracy']:.3f} at ${strong['cost']:.5f})",
            title_justify="left",
        )
        for col in ("budget", "method", "accuracy", "$ / question", "cascade - this"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for r in pol["rows"]:
            g = r["cascade_minus_this"]
            gain = "" if g is None else f"{signed(g['diff'])} {interval(g['lo'], g['hi'])}"
            table.add_row(
                f"${r['budget']:.5g}",
                method_label(r),
                f"{r['accuracy']:.3f}",
                f"${r['cost']:.5f}" + (" (under budget)" if is_short(r) else ""),
                gain + (f" (this at ${r['cost']:.3g})" if g is not None and is_short(r) else ""),
            )
        err_console.print(table)
        reach = pol.get("reach") or {}
        for method, share in pol["reach_share"].items():
            where = "not reached" if share is None else f"{share:.0%} of its dollars"
            where = reach.get(method, {}).get("text", where)
            err_console.print(
                escape(f"  reaches {strong['model']}'s one-sample accuracy: {method}: {where}")
            )


def mot_label(mot: dict[str, Any], models: list[str]) -> str:
    """The tuned MoT rule in a cell: train accuracy, then each of its two settings with the
    share of questions it runs (the mix that meets the budget; one setting when they agree)."""
    w = float(mot.get("weight", 1.0))
    pairs = list(zip(mot["settings"], (w, 1 - w), strict=True))
    if pairs[0][0] == pairs[1][0]:
        pairs = [(pairs[0][0], 1.0)]
    mix = [
        f"{share:.0%} {models[st['cheap']]} x{st['k']} < {st['threshold']:g}"
        for st, share in pairs
        if share > 0
    ]
    return f"{mot['train_accuracy']:.3f} ({', '.join(mix)})"
