"""report.md: the tables, policies, notes and glossary of an evaluation (the picture is in
:mod:`ttcalloc.stages.evaluate.plot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import write_text
from ttcalloc.common.redact import redact
from ttcalloc.common.wording import cost_header, cost_text, difference, share_text, signed


def _f(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _gain(rec: dict[str, Any]) -> str:
    """The gain over uniform and its interval (ends that are not 0 never read as 0)."""
    gain, ci = rec["gain_vs_uniform"], rec["gain_vs_uniform_ci"]
    if gain is None:
        return "-"
    return difference(gain, *ci) if ci is not None else signed(gain)


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(marks) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


K_EACH = "k-each"
K_EACH_ROW = "k each (k = B)"  # the row of k-each across budgets, each cell its own k


def label(rec: dict[str, Any]) -> str:
    """The policy's name as shown in tables and legends at one budget ("2 each (maj@2)")."""
    if rec["upper_bound"]:
        return f"{rec['policy']} (upper bound)"
    if rec["policy"] == K_EACH:
        return f"{rec['budget']:g} each ({rec['params']['action']})"
    if (rec.get("params") or {}).get("uniform_fallback"):
        return f"{rec['policy']} (fallback)"
    return str(rec["policy"])


def row_label(rec: dict[str, Any]) -> str:
    """The policy's name as a row across budgets."""
    if rec["policy"] == K_EACH:
        return K_EACH_ROW
    return f"{rec['policy']} (upper bound)" if rec["upper_bound"] else str(rec["policy"])


def realized(records: list[dict[str, Any]], budget: float) -> str:
    """`` (realized 7.44-8.14)``: the policies' realized mean costs at ``budget`` where they
    differ from it at 3 significant digits, else ""."""
    costs = [r["cost"] for r in records if r["budget"] == budget]
    if not costs or all(f"{c:.3g}" == f"{budget:.3g}" for c in costs):
        return ""
    lo, hi = f"{min(costs):.3g}", f"{max(costs):.3g}"
    return f" (realized {lo})" if lo == hi else f" (realized {lo}-{hi})"


def policy_order(records: list[dict[str, Any]]) -> list[str]:
    """Policy names in report order: a name first met at a later budget (k each, present only
    where an action costs B) goes right after the name it follows there."""
    seen: list[str] = []
    previous: dict[float, str] = {}
    for r in records:
        name, before = r["policy"], previous.get(r["budget"])
        if name not in seen:
            seen.insert(seen.index(before) + 1 if before is not None else 0, name)
        previous[r["budget"]] = name
    return seen


def _strongest_section(strongest: dict[str, Any], unit: str) -> list[str]:
    """The share of the strongest model's cost at which each policy reaches its accuracy."""
    ref_cost = cost_text(strongest["cost"], unit, ".4g")
    lines = [
        "",
        f"## Share of the strongest model's cost ({strongest['model']})",
        "",
        f"The strongest model is the one with the highest one-sample accuracy on the test "
        f"problems: {strongest['action']}, accuracy {strongest['accuracy']:.4f} at {ref_cost} "
        "per problem. For each policy, the smallest mean cost at which it reaches that accuracy "
        "and its share of that cost: exact for uniform-type baselines and the oracle (they run "
        "at any cost), else interpolated linearly between the budgets evaluated.",
        "",
    ]
    rows = [
        [
            name,
            share_text(e),
            cost_text(e["cost"], unit, ".4g"),
            e["how"]
            if e["cost"] is not None
            else f"best {e['best_accuracy']:.4f} at {cost_text(e['at_cost'], unit, '.4g')}",
        ]
        for name, e in strongest["policies"].items()
    ]
    return lines + _table(["policy", "share of its cost", "cost reaching it", "how"], rows)


def markdown(report: dict[str, Any]) -> str:
    """report.md: a summary table by budget, one detailed table per budget, imitation, notes."""
    records: list[dict[str, Any]] = report["policies"]
    budgets: list[float] = report["budgets"]
    unit = report["cost_unit"]
    settings = report["settings"]
    lines = [
        "# ttcalloc evaluation report",
        "",
        f"{report['problems']['test']} test problems ({report['scored_on']}); "
        f"{report['problems']['train']} train problems for tuning. Cost unit: {unit}. "
        f"Baselines and oracles are tuned to {settings['matched_to']}. Gains are against "
        "uniform allocation at each policy's own realized cost, with paired bootstrap 95% "
        f"intervals over problems ({settings['bootstrap']} resamples).",
        "",
        "## Accuracy (mean cost) by budget",
        "",
    ]
    by_key = {(r["policy"], r["budget"]): r for r in records}
    order = policy_order(records)
    summary = []
    for name in order:
        any_rec = next(r for r in records if r["policy"] == name)
        cells = [row_label(any_rec)]
        for b in budgets:
            r = by_key.get((name, b))
            cost = cost_text(r["cost"], unit, ".3g") if r else ""
            cells.append(f"{r['accuracy']:.4f} ({cost})" if r else "-")
        summary.append(cells)
    lines += _table(["policy", *(f"B = {b:g}{realized(records, b)}" for b in budgets)], summary)
    for b in budgets:
        lines += [
            "",
            f"## Budget {b:g}{realized(records, b).replace('realized', 'realized costs')}",
            "",
        ]
        rows = []
        for name in order:
            r = by_key.get((name, b))
            if r is None:
                continue
            rows.append(
                [
                    label(r),
                    _f(r["accuracy"]),
                    cost_text(r["cost"], unit),
                    _f(r["cost_over_budget"], ".3f"),
                    _gain(r),
                    _pct(r["relative_gain"]),
                    _f(r["regret"]),
                    _f(r["oracle_gain_share"], ".2f"),
                ]
            )
        lines += _table(
            [
                "policy",
                "accuracy",
                cost_header(unit),
                "cost / budget",
                "gain vs uniform [95% CI]",
                "relative gain",
                "regret",
                "share of oracle gain",
            ],
            rows,
        )
    if report.get("strongest"):
        lines += _strongest_section(report["strongest"], unit)
    learned = [r for r in records if r["kind"] == "learned" and "imitation_accuracy" in r]
    if learned:
        lines += [
            "",
            "## Learned policies against the oracle's actions",
            "",
            "The paper's bound: regret <= imitation error x worst-case per-problem gap "
            "(both sides against the oracle's per-problem actions at the policy's cost).",
            "",
        ]
        lines += _table(
            [
                "policy",
                "budget",
                "imitation accuracy",
                "regret",
                "bound",
                "tighter bound",
                "holds",
            ],
            [
                [
                    r["policy"],
                    f"{r['budget']:g}",
                    _f(r["imitation_accuracy"], ".3f"),
                    _f(r["regret_vs_labels"]),
                    _f(r["bound"]),
                    _f(r["mean_gap_bound"]),
                    "yes" if r["bound_holds"] else "NO",
                ]
                for r in learned
            ],
        )
        for r in learned:
            conf = r["confusion"]
            acts = conf["actions"]
            lines += [
                "",
                f"Actions of {r['policy']} at budget {r['budget']:g} "
                "(rows: oracle, columns: policy):",
                "",
            ]
            lines += _table(
                ["oracle \\ policy", *acts],
                [[a, *(str(v) for v in row)] for a, row in zip(acts, conf["matrix"], strict=True)],
            )
    lines += ["", "## Actions on the test problems", ""]
    lines += _table(
        ["action", "accuracy", cost_header(unit)],
        [[a["name"], _f(a["accuracy"]), cost_text(a["cost"], unit)] for a in report["actions"]],
    )
    lines += ["", "## Policies", ""]
    for name, text in report["descriptions"].items():
        lines.append(f"- **{name}**: {text}")
    for name in order:
        if name not in report["descriptions"]:
            lines.append(f"- **{name}**: learned policy (ttcalloc train)")
    if report["notes"]:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in report["notes"]]
    lines += ["", "## Glossary", "", *GLOSSARY]
    if report.get("strongest"):
        lines += MODELS_GLOSSARY
    return "\n".join(lines) + "\n"


GLOSSARY = [
    "- **maj@k / pass@k**: draw k samples of a problem; the answer is their majority vote "
    "(maj), or the problem counts as solved if any sample is right (pass, needs a verifier).",
    "- **budget B, cost**: the mean cost per problem a policy may spend, in the cost unit above; "
    "*cost* is what it actually spent on these test problems.",
    "- **uniform**: the same action for every problem, at exactly the cost compared with. "
    "Each action has a mean accuracy and a mean cost over the problems; uniform takes the two "
    "actions on the upper hull of those points on either side of the cost and mixes them (a "
    "share p of the problems gets the costlier one) so the mean cost meets it exactly. At "
    "B = 2 samples it may mix maj@1 with maj@4, skipping maj@2 when maj@2 lies below the hull "
    "(with ties split, maj@2 is barely better than maj@1). It is never below k each at the same "
    "cost: a fair, stronger baseline than the plain reading of the budget.",
    "- **k each**: every problem gets the one action whose cost is B (maj@2 at B = 2 samples: "
    '"2 each"), scored at B itself; absent at a budget no action costs exactly (no action is '
    "invented between two others). A gain over uniform is not a gain over B samples each: "
    "the notes pair each learned policy with k each where both spent within 5% of each other.",
    "- **cost matching**: a policy that spent a little more or less than B is compared with "
    "uniform at exactly the cost it spent, so no policy wins by spending more. Headings read "
    "*B = 8 (realized 7.44-8.14)* when the policies' realized mean costs differ from B.",
    "- **gain vs uniform**: accuracy minus uniform's at the same cost; the interval is a paired "
    "bootstrap 95% interval over problems.",
    "- **ahead of / behind / not distinguishable from** (the notes, the CLI and the README use "
    "only these): the paired 95% interval of the difference is above 0 / below 0 / covers 0. "
    "*Not distinguishable* is not *as good as*: the data cannot tell. Several policies and "
    "budgets are compared at once, so about 1 interval in 20 comes out ahead or behind by "
    "chance; the notes count them.",
    "- **oracle**: the best allocation with hindsight (the exact budgeted optimum on these "
    "problems' own curves): an upper bound for any one-k-per-problem policy, not reachable. "
    "**oracle-fit** is the same rule fit on the other half of each problem's samples.",
    "- **(fallback)**: a static learner (imitate, plugin) whose question features did not "
    "beat uniform out of fold when it was trained (`train` warned). It then is uniform "
    "allocation: a hash of each question decides which questions get the costlier of the two "
    "actions uniform mixed on the train problems, so its gain over uniform here is which "
    "questions the hash picked, not what its features know.",
    "- **regret**: oracle accuracy minus the policy's. **share** (of the oracle gain): the "
    "policy's gain over uniform divided by the oracle's.",
    "- **eval half**: each problem's samples are split in two; policies are trained and tuned "
    "on the fit half and scored on the eval half, so a policy is never scored on the samples "
    "that taught it.",
    "- **mu, price**: a learned policy picks argmax accuracy - mu x cost; mu (or an adaptive "
    "policy's price) is the accuracy it will give up to save one unit of cost, set so the "
    "expected cost meets B.",
]


MODELS_GLOSSARY = [
    "- **MODEL:maj@k**: k samples of that model; costs are in the curves' unit (dollars: each "
    "model's price per sample). **uniform** over several models may mix two models' actions.",
    "- **single:MODEL**: that model alone, uniform over its actions (two adjacent actions on "
    "its hull mixed so the mean cost meets B); absent where its cheapest action costs more "
    "than B. **best-single**: the model whose single-model uniform is best on the train "
    "problems at B, scored on the test problems: the one a router has to beat (the notes pair "
    "each learned policy with the best single model at the cost that policy spent, chosen on "
    "train at that cost). **random-route**: each problem a random model (equally "
    "likely when B affords it), every model the same k, mixed so the mean cost meets B.",
    "- **share of the strongest model's cost**: the strongest model has the highest "
    "one-sample accuracy on the test problems; a policy's share is the smallest mean cost at "
    "which it reaches that accuracy over that one sample's cost. Exact for uniform-type "
    "baselines and the oracle (they run at any cost), interpolated between the budgets "
    "evaluated for the others (*<=* when reached at the lowest one).",
]


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    write_text(path, redact(markdown(report)))  # no credential, as in report.json
