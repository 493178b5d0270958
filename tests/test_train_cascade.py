"""``train --learner cascade``'s caps: 16 samples of each model by default, ``--cap`` sets
another, and neither goes above a model's fit-half samples."""

from __future__ import annotations

import json
from pathlib import Path

from test_run_models import two_model_curves


def test_caps_are_16_or_cap_and_never_above_the_fit_half(tmp_path: Path) -> None:
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    problems, _, curves = two_model_curves(tmp_path, n=40)  # fit half: 20 samples of each
    small = {"budgets": (0.003,), "folds": 2, "n_estimators": 5, "orders": 4, "fit_orders": 2}
    for cap, want in ((None, [16, 16]), (8, [8, 8]), (64, [20, 20])):
        out = tmp_path / f"policy-{cap}"
        train_cascade(
            curves,
            problems,
            out,
            CascadeTrainOptions(**small) if cap is None else CascadeTrainOptions(cap=cap, **small),
        )
        meta = json.loads((out / "policy.json").read_text())
        assert meta["cascade"]["caps"] == want, (cap, meta["cascade"]["caps"])
