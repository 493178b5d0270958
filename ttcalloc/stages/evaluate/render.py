"""The human side of an evaluation: report.md tables and the accuracy-vs-cost picture."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import atomic_path, write_text


def _f(value: float | None, fmt: str = ".4f", signed: bool = False) -> str:
    if value is None:
        return "-"
    return format(value, ("+" if signed else "") + fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _ci(ci: Iterable[float] | None) -> str:
    if ci is None:
        return ""
    lo, hi = ci
    return f" [{lo:+.4f}, {hi:+.4f}]"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(marks) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def label(rec: dict[str, Any]) -> str:
    """The policy's name as shown in tables and legends."""
    if rec["upper_bound"]:
        return f"{rec['policy']} (upper bound)"
    return str(rec["policy"])


def _policy_order(records: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in records:
        if r["policy"] not in seen:
            seen.append(r["policy"])
    return seen


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
    order = _policy_order(records)
    summary = []
    for name in order:
        any_rec = next(r for r in records if r["policy"] == name)
        cells = [label(any_rec)]
        for b in budgets:
            r = by_key.get((name, b))
            cells.append(f"{r['accuracy']:.4f} ({r['cost']:.3g})" if r else "-")
        summary.append(cells)
    lines += _table(["policy", *(f"B = {b:g}" for b in budgets)], summary)
    for b in budgets:
        lines += ["", f"## Budget {b:g}", ""]
        rows = []
        for name in order:
            r = by_key.get((name, b))
            if r is None:
                continue
            rows.append(
                [
                    label(r),
                    _f(r["accuracy"]),
                    _f(r["cost"], ".3f"),
                    _f(r["cost_over_budget"], ".3f"),
                    _f(r["gain_vs_uniform"], ".4f", True) + _ci(r["gain_vs_uniform_ci"]),
                    _pct(r["relative_gain"]),
                    _f(r["regret"]),
                    _f(r["oracle_gain_share"], ".2f"),
                ]
            )
        lines += _table(
            [
                "policy",
                "accuracy",
                f"cost ({unit})",
                "cost / budget",
                "gain vs uniform [95% CI]",
                "relative gain",
                "regret",
                "share of oracle gain",
            ],
            rows,
        )
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
        ["action", "accuracy", f"cost ({unit})"],
        [[a["name"], _f(a["accuracy"]), _f(a["cost"], ".3f")] for a in report["actions"]],
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
    return "\n".join(lines) + "\n"


GLOSSARY = [
    "- **maj@k / pass@k**: draw k samples of a problem; the answer is their majority vote "
    "(maj), or the problem counts as solved if any sample is right (pass, needs a verifier).",
    "- **budget B, cost**: the mean cost per problem a policy may spend, in the cost unit above; "
    "*cost* is what it actually spent on these test problems.",
    "- **cost matching**: a policy that spent a little more or less than B is compared with "
    "uniform at exactly the cost it spent (two adjacent k mixed), so no policy wins by spending "
    "more.",
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
    "- **regret**: oracle accuracy minus the policy's. **share** (of the oracle gain): the "
    "policy's gain over uniform divided by the oracle's.",
    "- **eval half**: each problem's samples are split in two; policies are trained and tuned "
    "on the fit half and scored on the eval half, so a policy is never scored on the samples "
    "that taught it.",
    "- **mu, price**: a learned policy picks argmax accuracy - mu x cost; mu (or an adaptive "
    "policy's price) is the accuracy it will give up to save one unit of cost, set so the "
    "expected cost meets B.",
]


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    write_text(path, markdown(report))


STYLE = {
    "uniform": ("tab:gray", "s"),
    "random": ("tab:brown", "v"),
    "length": ("tab:olive", "D"),
    "esc": ("tab:purple", "^"),
    "adaptive": ("tab:pink", "P"),
    "oracle-fit": ("black", "x"),
    "oracle": ("black", "*"),
}
LEARNED_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:cyan")


def _gain_bar(rec: dict[str, Any]) -> tuple[float, float]:
    """Below and above the point: the paired interval of the gain over uniform around it."""
    gain = rec["gain_vs_uniform"] or 0.0
    lo, hi = rec["gain_vs_uniform_ci"] or (gain, gain)
    return max(0.0, gain - lo), max(0.0, hi - gain)


def write_plot(path: Path, report: dict[str, Any], frontiers: dict[str, list[list[float]]]) -> None:
    """accuracy_vs_budget.png: every policy's accuracy against its mean cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records: list[dict[str, Any]] = report["policies"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    if frontiers["oracle"]:
        xs, ys = zip(*frontiers["oracle"], strict=True)
        ax.plot(xs, ys, "--", color="black", lw=1, label="oracle (upper bound)")
    if frontiers["uniform"]:
        xs, ys = zip(*frontiers["uniform"], strict=True)
        ax.plot(xs, ys, "-", color="tab:gray", lw=1.5, label="uniform")
    for a in report["actions"]:
        ax.annotate(
            a["name"],
            (a["cost"], a["accuracy"]),
            textcoords="offset points",
            xytext=(3, -11),
            fontsize=7,
            color="tab:gray",
        )
    learned_i = 0
    for name in _policy_order(records):
        pts = sorted(
            (r for r in records if r["policy"] == name and not r["upper_bound"]),
            key=lambda r: r["cost"],
        )
        if not pts or name == "uniform":
            continue
        px = [r["cost"] for r in pts]
        py = [r["accuracy"] for r in pts]
        if pts[0]["kind"] == "learned":
            color = LEARNED_COLORS[learned_i % len(LEARNED_COLORS)]
            learned_i += 1
            err = list(zip(*(_gain_bar(r) for r in pts), strict=True))
            ax.errorbar(
                px, py, yerr=err, fmt="o-", color=color, lw=2, ms=7, capsize=4, label=name, zorder=5
            )
        else:
            color, marker = STYLE.get(name, ("tab:gray", "o"))
            ax.plot(px, py, marker=marker, ls=":", color=color, ms=6, label=name)
    for b in report["budgets"]:
        ax.axvline(b, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel(f"mean cost per problem ({report['cost_unit']})")
    ax.set_ylabel("accuracy on the test problems")
    ax.set_title(
        f"Accuracy vs. cost: {report['problems']['test']} test problems "
        f"({report['scored_on'].split(', ')[-1]})\nbars: paired bootstrap 95% interval "
        "of the gain over uniform at the same cost",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
