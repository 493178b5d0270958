"""accuracy_vs_budget.png: every policy's accuracy against its mean cost, and below it each
policy's gain over uniform at the same cost with its paired interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import atomic_path
from ttcalloc.core.actions import parse_action
from ttcalloc.stages.evaluate.render import K_EACH, policy_order

STYLE = {
    "uniform": ("tab:gray", "s"),
    "k-each": ("dimgray", "o"),
    "random": ("tab:brown", "v"),
    "length": ("tab:olive", "D"),
    "esc": ("tab:purple", "^"),
    "adaptive": ("tab:pink", "P"),
    "verify": ("tab:cyan", "X"),
    "oracle-fit": ("black", "x"),
    "oracle": ("black", "*"),
    "best-single": ("tab:red", "h"),
    "random-route": ("tab:brown", "1"),
}
# single:MODEL, one per model, in the order they come
SINGLE_STYLES = (("goldenrod", "<"), ("tab:green", ">"), ("slategray", "d"), ("teal", "p"))
LEARNED_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:cyan")
# hollow, each learned policy smaller than the one before: policies on the same point nest
LEARNED_MARKERS = (("o", 11), ("D", 8), ("s", 6), ("^", 5), ("v", 4))
BARS = ("learned", K_EACH)  # what the gain panel draws with its interval


def _strategy(rec: dict[str, Any]) -> str:
    """maj or pass: the strategy of a k-each record's action."""
    parsed = parse_action(str(rec["params"]["action"]))  # MODEL:maj@k on several models
    return parsed.strategy if parsed is not None else str(rec["params"]["action"]).partition("@")[0]


def _gain_bar(rec: dict[str, Any]) -> tuple[float, float]:
    """Below and above the gain: its paired interval."""
    gain = rec["gain_vs_uniform"] or 0.0
    lo, hi = rec["gain_vs_uniform_ci"] or (gain, gain)
    return max(0.0, gain - lo), max(0.0, hi - gain)


def _series(
    records: list[dict[str, Any]],
) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """Each policy drawn (not uniform, not the in-sample oracle): its points by cost and style."""
    out = []
    learned_i = single_i = 0
    for name in policy_order(records):
        pts = sorted(
            (r for r in records if r["policy"] == name and not r["upper_bound"]),
            key=lambda r: r["cost"],
        )
        if not pts or name == "uniform":
            continue
        if pts[0]["kind"] == "learned":
            color = LEARNED_COLORS[learned_i % len(LEARNED_COLORS)]
            marker, size = LEARNED_MARKERS[learned_i % len(LEARNED_MARKERS)]
            learned_i += 1
            style = {
                "color": color,
                "marker": marker,
                "ls": "-",
                "lw": 2,
                "ms": size,
                "mfc": "none",
                "mew": 2,
                "zorder": 4,
                "label": name,
            }
        else:
            color, marker = STYLE.get(name, ("tab:gray", "o"))
            if name.startswith("single:"):
                color, marker = SINGLE_STYLES[single_i % len(SINGLE_STYLES)]
                single_i += 1
            style = {
                "color": color,
                "marker": marker,
                "ls": ":",
                "lw": 1,
                "ms": 6,
                "zorder": 3,
                "label": name,
            }
            if name == K_EACH:
                style |= {
                    "ls": "none",
                    "ms": 9,
                    "mfc": "none",
                    "mew": 1.5,
                    "label": f"k each ({_strategy(pts[0])}@k at k = B)",
                }
        out.append((name, pts, style))
    return out


def x_right(report: dict[str, Any], frontiers: dict[str, list[list[float]]]) -> float | None:
    """Where the cost axis ends when the curves run far past what the policies spent (an
    action of a dear model, e.g. gpt-4:maj@4 at $0.08 against budgets of $0.002-$0.006): 15%
    past the largest budget, policy cost or strongest model's one sample; None otherwise."""
    span = max(
        [*report["budgets"], *(r["cost"] for r in report["policies"])]
        + ([report["strongest"]["cost"]] if report.get("strongest") else [])
    )
    far = max(
        [p[0] for f in frontiers.values() for p in f] + [a["cost"] for a in report["actions"]],
        default=0.0,
    )
    return 1.15 * span if span > 0 and far > 2 * span else None


def write_plot(path: Path, report: dict[str, Any], frontiers: dict[str, list[list[float]]]) -> None:
    """accuracy_vs_budget.png: above, every policy's accuracy against its mean cost; below, the
    gain over uniform at the same cost, with the paired 95% interval for the learned policies
    and k each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records: list[dict[str, Any]] = report["policies"]
    fig, (ax, gx) = plt.subplots(
        2, 1, figsize=(8, 7.5), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    if frontiers["oracle"]:
        xs, ys = zip(*frontiers["oracle"], strict=True)
        ax.plot(xs, ys, "--", color="black", lw=1, label="oracle (upper bound)", zorder=2)
    if frontiers["uniform"]:  # above the markers, which are hollow: never hidden
        xs, ys = zip(*frontiers["uniform"], strict=True)
        ax.plot(xs, ys, "-", color="tab:gray", lw=1.5, label="uniform", zorder=6)
    for a in report["actions"]:
        ax.annotate(
            a["name"],
            (a["cost"], a["accuracy"]),
            textcoords="offset points",
            xytext=(3, -11),
            fontsize=7,
            color="tab:gray",
        )
    gx.axhline(0.0, color="tab:gray", lw=1.5, zorder=6, label="uniform (gain 0)")
    for name, pts, style in _series(records):
        px = [r["cost"] for r in pts]
        ax.plot(px, [r["accuracy"] for r in pts], **style)
        gains = [r["gain_vs_uniform"] for r in pts]
        if any(g is None for g in gains):
            continue
        if pts[0]["kind"] in BARS or name in BARS:
            err = list(zip(*(_gain_bar(r) for r in pts), strict=True))
            gx.errorbar(px, gains, yerr=err, capsize=4, elinewidth=1.5, **style)
        else:
            gx.plot(px, gains, **(style | {"ms": 4, "lw": 0.8}))
    if report.get("strongest"):  # several models: the strongest model's one-sample accuracy
        ref = report["strongest"]
        ax.axhline(ref["accuracy"], color="tab:red", lw=0.8, ls="--", zorder=1)
        ax.plot(
            [ref["cost"]], [ref["accuracy"]], "*", color="tab:red", ms=12, zorder=5,
            label=f"{ref['action']} (strongest model, one sample)",
        )  # fmt: skip
    for b in report["budgets"]:
        ax.axvline(b, color="0.85", lw=0.8, zorder=0)
        gx.axvline(b, color="0.85", lw=0.8, zorder=0)
    if report["cost_unit"] == "usd":
        from matplotlib.ticker import FuncFormatter

        gx.set_xlabel("dollars per question (mean)")
        gx.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"${x:.3g}"))
    else:
        gx.set_xlabel(f"mean cost per problem ({report['cost_unit']})")
    ax.set_ylabel("accuracy on the test problems")
    gx.set_ylabel("gain over uniform\nat the same cost")
    ax.set_title(
        f"Accuracy vs. cost: {report['problems']['test']} test problems "
        f"({report['scored_on'].split(', ')[-1]})",
        fontsize=10,
    )
    gx.set_title(
        "gain over uniform; bars: paired bootstrap 95% interval (learned policies, k each)",
        fontsize=9,
    )
    if (right := x_right(report, frontiers)) is not None:
        gx.set_xlim(0.0, right)  # shared with the accuracy panel
    for axis in (ax, gx):
        axis.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
