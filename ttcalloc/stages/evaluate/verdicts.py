"""Plain sentences on what the scored records say, for the report's notes."""

from __future__ import annotations

from typing import Any


def verdicts(records: list[dict[str, Any]]) -> list[str]:
    """Plain sentences on what the intervals say about each learned policy, and surprises."""
    out = []
    for r in records:
        b = f"{r['budget']:g}"
        sequential = r["policy"] in ("esc", "adaptive", "verify") or (
            r["kind"] == "learned" and (r.get("params") or {}).get("learner") == "stop"
        )
        if sequential and (r["regret"] or 0.0) < -1e-9:
            out.append(
                f"{r['policy']} at {b} beats the fixed-k oracle by {-r['regret']:.4f}: the "
                "oracle chooses one fixed action per problem (knowing its curve), a sequential "
                "policy adapts within a problem to the answers it sees."
            )
        if r["kind"] != "learned" or r["gain_vs_uniform_ci"] is None:
            continue
        lo, hi = r["gain_vs_uniform_ci"]
        gain = f"{r['gain_vs_uniform']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        if hi < 0:
            verdict = f"loses to uniform at the same cost: {gain}"
        elif lo > 0:
            verdict = f"beats uniform at the same cost: {gain}"
        else:
            verdict = f"is not distinguishable from uniform at the same cost: {gain}"
        rivals = [
            o
            for o in records
            if o["budget"] == r["budget"] and o["kind"] == "baseline" and o["policy"] != "uniform"
        ]
        best = max(rivals, key=lambda o: o["gain_vs_uniform"] or 0.0, default=None)
        if best is not None and (best["gain_vs_uniform"] or 0.0) > (r["gain_vs_uniform"] or 0.0):
            verdict += (
                f"; {best['policy']} does better ({best['gain_vs_uniform']:+.4f} over uniform)"
            )
        for name, (diff, d_lo, d_hi, cost) in sorted(r.get("gain_vs", {}).items()):
            word = "beats" if d_lo > 0 else "loses to" if d_hi < 0 else "ties with"
            verdict += (
                f"; {word} {name} ({diff:+.4f} [{d_lo:+.4f}, {d_hi:+.4f}] in accuracy, paired, "
                f"at cost {r['cost']:.3g} against {cost:.3g})"
            )
        out.append(f"{r['policy']} at {b} {verdict}.")
    return out
