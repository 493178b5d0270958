"""How differences and interval ends are printed: a nonzero end never reads as zero."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from ttcalloc.common.wording import difference, interval, signed


def test_the_reported_interval_keeps_its_positive_lower_end() -> None:
    # `run --compare uniform` printed [+0.0000, +0.0957] for a lower end of a few 1e-5
    assert interval(2.3e-5, 0.0957) == "[+0.000023, +0.0957]"
    assert interval(-4e-5, 0.0957) == "[-0.000040, +0.0957]"
    assert interval(3e-9, 0.1) == "[+3.0e-09, +0.1000]"
    assert interval(0.0, 0.0957) == "[+0.0000, +0.0957]"  # only an exact 0 reads as 0
    assert interval(-0.0, 0.0) == "[+0.0000, +0.0000]"
    assert difference(0.0123, 0.004, 0.0207) == "+0.0123 [+0.0040, +0.0207]"
    assert signed(0.0123, 3) == "+0.012" and signed(0.0004, 3) == "+0.00040"


@given(st.floats(-1, 1, allow_nan=False), st.integers(2, 5))
def test_a_printed_value_has_the_values_sign_and_is_close(value: float, digits: int) -> None:
    text = signed(value, digits)
    shown = float(text)
    if value == 0:
        assert shown == 0
        return
    assert shown != 0 and (shown > 0) == (value > 0)
    plain = f"{value:+.{digits}f}"
    if float(plain) != 0:
        assert text == plain  # the usual digits wherever they do not read as zero
    else:  # two significant digits
        assert abs(shown - value) <= 0.051 * abs(value)


def test_run_compare_line_never_reads_a_positive_lower_end_as_zero() -> None:
    """`run --compare uniform` printed `[+0.0000, +0.0957]` for a lower end of about 2e-5."""
    from pathlib import Path

    from ttcalloc.stages.run.options import RunResult
    from ttcalloc.stages.run.summary import describe

    result = RunResult(
        out=Path("a.parquet"),
        samples_out=Path("a-samples.parquet"),
        policy="adaptive",
        questions=120,
        labeled=120,
        answered=120,
        complete=120,
        accuracy=0.8,
        mean_cost=2.0,
        mean_samples=2.0,
        budget=2.0,
        cost_unit="samples",
        hard_budget=False,
        total_cost=240.0,
        sampling=None,
        comparison={
            "questions": 120,
            "policy_accuracy": 0.8,
            "policy_samples": 2.0,
            "uniform_accuracy": 0.75,
            "uniform_samples": 2.0,
            "difference": 0.05,
            "interval": [2.3e-05, 0.0957],
            "verdict": "ahead of",
        },
    )
    line = describe(result)
    assert "+0.0500 [+0.000023, +0.0957]" in line
    assert "[+0.0000," not in line


def test_run_line_in_dollars_says_the_mean_cost_once() -> None:
    """A cascade run printed "mean cost 0.01197 usd per question ... $0.01197 per question"."""
    from pathlib import Path

    from ttcalloc.stages.run.options import RunResult
    from ttcalloc.stages.run.summary import describe

    def line(unit: str, usd: float) -> str:
        result = RunResult(
            out=Path("a.parquet"), samples_out=Path("a-samples.parquet"), policy="cascade",
            questions=10, labeled=10, answered=10, complete=10, accuracy=0.8,
            mean_cost=0.01197 if unit == "usd" else 3.0, mean_samples=3.0, budget=0.012,
            cost_unit=unit, hard_budget=False, total_cost=0.1197, sampling=None,
            models={"a": 0.6, "b": 0.4}, mean_usd=usd,
        )  # fmt: skip
        return describe(result)

    usd = line("usd", 0.01197)
    assert usd.count("0.01197") == 1 and "mean cost 0.01197 usd per question" in usd, usd
    assert "; questions per model: a 60%, b 40%" in usd
    samples = line("samples", 0.01197)  # another unit: the dollars are news
    assert "; $0.01197 per question; questions per model: a 60%" in samples, samples


def test_dollars_never_in_e_notation_and_samples_counted() -> None:
    """A newcomer's trial read "1 samples, spent $1.738e-06/$0.004" on run's progress line."""
    from ttcalloc.common.wording import dollars, samples_text

    assert dollars(1.738e-06) == "$0.000001738" and dollars(0.004) == "$0.004000"
    assert dollars(0.0) == "$0" and dollars(12.5) == "$12.50" and "e" not in dollars(3e-9)
    assert samples_text(1) == "1 sample" and samples_text(0) == "0 samples"
