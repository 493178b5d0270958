"""accuracy_vs_dollars.png of a cascade report: each method's test accuracy against its dollars,
one colour per method over the whole figure (the same in every policy's subplot), hollow where a
baseline spent less than its budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttcalloc.artifacts.io import atomic_path
from ttcalloc.stages.evaluate.cascade_text import SHORT, is_short

BEST = "best single model (chosen on train)"
CASCADE_COLOUR = "tab:blue"
# the other methods' colours, in the order they first appear in the figure (blue is the
# cascade's alone)
COLOURS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:olive", "tab:cyan", "tab:gray")  # fmt: skip


def colours(methods: list[str]) -> dict[str, str]:
    """A distinct colour for each method: the cascade blue, the others from :data:`COLOURS`
    (cycled beyond nine)."""
    others = [m for m in methods if m != "cascade"]
    out = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(others)}
    if "cascade" in methods:
        out["cascade"] = CASCADE_COLOUR
    return out


def figure_colours(policies: dict[str, Any]) -> dict[str, str]:
    """One colour per method over every policy's rows (:func:`colours`, the methods in the
    order they first appear across the policies), so a method keeps its colour in every
    subplot."""
    methods: dict[str, None] = {}
    for pol in policies.values():
        for r in pol["rows"]:
            if r["method"] != BEST:  # drawn as its model's own line
                methods.setdefault(r["method"], None)
    return colours(list(methods))


def plot_dollars(policies: dict[str, Any], path: Path) -> None:
    """accuracy_vs_dollars.png: each method's test accuracy against its dollars per question
    (one line through the budgets), and the strongest model's one-sample point.  A baseline's
    point is hollow where it spent more than :data:`SHORT` below the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(policies), figsize=(6.5 * len(policies), 4.5), squeeze=False)
    colour = figure_colours(policies)
    for ax, (name, pol) in zip(axes[0], policies.items(), strict=True):
        by: dict[str, list[tuple[float, float, bool]]] = {}
        for r in pol["rows"]:
            if r["method"] == BEST:
                continue  # drawn as its model's own line
            by.setdefault(r["method"], []).append((r["cost"], r["accuracy"], is_short(r)))
        any_short = False
        for method, pts in by.items():
            pts.sort()
            bold = method == "cascade"
            ax.plot(
                [c for c, _, _ in pts],
                [a for _, a, _ in pts],
                marker="o",
                lw=2.2 if bold else 1.2,
                label=method,
                color=colour[method],
            )
            short = [(c, a) for c, a, s in pts if s]
            if short:
                any_short = True
                ax.plot(
                    [c for c, _ in short],
                    [a for _, a in short],
                    "o",
                    mfc="white",
                    mec=colour[method],
                    zorder=3,
                )
        if any_short:
            ax.plot([], [], "o", mfc="white", mec="gray",
                    label=f"spent >{SHORT:.0%} under its budget")  # fmt: skip
        s = pol["strongest"]
        ax.axhline(s["accuracy"], color="black", ls=":", lw=1)
        ax.plot([s["cost"]], [s["accuracy"]], "k*", ms=12, label=f"{s['model']}, one sample")
        ax.set_xscale("log")
        ax.set_xlabel("dollars per question (test)")
        ax.set_ylabel("accuracy (test)")
        ax.set_title(f"{name}: {' -> '.join(pol['models'])}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
