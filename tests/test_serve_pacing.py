"""The fleet's pacing and ledger of ``ttcalloc serve``, without a server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ttcalloc.common.errors import OutputError
from ttcalloc.serve.ledger import FleetLedger, Totals
from ttcalloc.serve.pacer import CEILING, FleetPacer


def test_a_window_pays_back_what_the_fleet_overspent_or_underspent() -> None:
    pacer = FleetPacer(budget=2.0, floor=1.0, totals=Totals(requests=10, spend=20.0))
    _, b = pacer.start(5)
    assert b == pytest.approx(2.0)  # on budget so far
    pacer = FleetPacer(budget=2.0, floor=1.0, totals=Totals(requests=10, spend=25.0))
    _, b = pacer.start(5)
    assert b == pytest.approx(1.0)  # 5 over: the next 5 requests get 1 each
    pacer = FleetPacer(budget=2.0, floor=1.0, totals=Totals(requests=10, spend=15.0))
    _, b = pacer.start(5)
    assert b == pytest.approx(3.0)  # 5 under: 1 more each


def test_windows_in_flight_count_at_what_they_are_expected_to_spend() -> None:
    pacer = FleetPacer(budget=2.0, floor=1.0, totals=Totals())
    first, b1 = pacer.start(4)
    assert b1 == pytest.approx(2.0)
    pacer.expect(first, 6.0)  # its actions cost 6, not 8: 2 left for the next window
    _, b2 = pacer.start(2)
    assert b2 == pytest.approx(3.0)
    pacer.finish(first, 4, 6.0)
    assert pacer.requests == 4 and pacer.mean_cost == pytest.approx(1.5)


def test_the_window_budget_is_clamped() -> None:
    broke = FleetPacer(budget=2.0, floor=1.0, totals=Totals(requests=10, spend=100.0))
    assert broke.start(1)[1] == 1.0
    flush = FleetPacer(budget=2.0, floor=1.0, totals=Totals(requests=100, spend=0.0))
    assert flush.start(1)[1] == CEILING * 2.0


def test_the_ledger_keeps_the_fleets_rounds_apart_from_header_budgets(tmp_path: Path) -> None:
    ledger = FleetLedger(tmp_path / "state")
    ledger.keep(10, 15, 15.0, 1.5, 0.2, override=False)
    ledger.flush()
    ledger.keep(2, 8, 8.0, 4.0, None, override=True)
    ledger.flush()
    ledger.keep(6, 9, 9.0, 1.5, 0.3, override=False)
    ledger.flush()
    ledger.close()
    again = FleetLedger(tmp_path / "state")
    assert again.totals() == Totals(16, 24, 24.0)
    assert again.totals(override=True) == Totals(2, 8, 8.0)
    assert again.totals(None) == Totals(18, 32, 32.0)
    assert again.last_price() == 0.3
    mode = sqlite3.connect(tmp_path / "state" / "ledger.sqlite").execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"
    again.close()


def test_an_unwritable_state_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="--state-dir"):
        FleetLedger(blocker / "state")


def test_a_window_in_flight_counts_at_least_what_its_samples_cost_so_far() -> None:
    pacer = FleetPacer(budget=2.0, floor=0.5, totals=Totals())
    first, _ = pacer.start(4)
    pacer.expect(first, 6.0)
    pacer.spend(first, 5.0)
    pacer.spend(first, 3.0)  # 8 spent already, above the 6 its decisions expected
    _, b = pacer.start(4)
    assert b == pytest.approx((2.0 * 8 - 8.0) / 4)


def test_a_static_window_mixes_two_multipliers_to_meet_its_budget() -> None:
    """Eight alike questions: the calibrated multiplier puts all on the cheap action (cost 1),
    the next smaller one all on the costly one (cost 5); mixed, the mean is nearest 3."""
    import numpy as np

    from ttcalloc.learn.policy import calibrate, decide
    from ttcalloc.serve.mixing import mixed_mus

    scores = np.tile([0.5, 0.9], (8, 1))
    costs = np.array([1.0, 5.0])
    mu = calibrate(scores, costs, np.broadcast_to(costs, scores.shape), 3.0)
    assert costs[decide(scores, costs, mu)].mean() == 1.0
    mus = mixed_mus(scores, costs, mu, costs, 3.0, [f"q{i}" for i in range(8)])
    chosen = [int(decide(scores[i : i + 1], costs, m)[0]) for i, m in enumerate(mus)]
    assert costs[chosen].mean() == pytest.approx(3.0)
