"""``run``'s inputs taken as hostile: output paths that nest, policy folders edited by hand
(actions, units, state features, prices, caps, model feature names) and budgets in the wrong
unit.  Every refusal is one ``error:`` line, before any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli, sim_pipeline, train_both, write_jsonl


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("inputs")
    p = sim_pipeline(tmp, 40)
    p.update(train_both(p["alloc"], p["problems"], "1.5", tmp))
    return p


def _questions(tmp: Path, n: int = 5) -> Path:
    rows = [{"question": f"What is {i}+{i + 3}?", "answer": str(2 * i + 3)} for i in range(n)]
    return write_jsonl(tmp / "q.jsonl", rows)


def _refused(r: object, *words: str) -> None:
    err = r.stderr  # type: ignore[attr-defined]
    assert r.exit_code != 0, err  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.mark.parametrize("learner", ["imitate", "stop"])
def test_out_and_samples_out_may_not_nest(
    trained: dict[str, Path], tmp_path: Path, learner: str
) -> None:
    q = _questions(tmp_path)
    base = ["run", trained[learner], q, "--model", "sim/medium", "--budget", "1.5", "--no-progress"]
    samples = tmp_path / "s.parquet"
    r = run_cli(*base, "--samples-out", samples, "--out", samples / "answers.parquet")
    _refused(r, "--out", "inside --samples-out")
    out = tmp_path / "a.parquet"
    r = run_cli(*base, "--out", out, "--samples-out", out / "samples")
    _refused(r, "--samples-out", "inside --out")
    # the same through a symlink to the samples folder
    samples.mkdir()
    (tmp_path / "link").symlink_to(samples)
    r = run_cli(*base, "--samples-out", samples, "--out", tmp_path / "link" / "a.parquet")
    _refused(r, "--out", "inside --samples-out")
    samples.rmdir()
    assert not samples.exists() and not out.exists()
    # beside each other they work, and estimate reads the samples folder
    r = run_cli(*base, "--out", out, "--samples-out", samples)
    assert r.exit_code == 0, r.stderr
    r = run_cli("estimate", samples, "--ks", "1", "--cost", "samples", "--out", tmp_path / "c.pq")
    assert r.exit_code == 0, r.stderr
