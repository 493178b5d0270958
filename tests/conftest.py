"""Shared fixtures: an isolated work dir for every test, and the real data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every machine and every run ("repeatable"), so a fresh
# clone is not red by the luck of one draw; `make fuzz` explores new examples ("explore").
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("TTCALLOC_HYPOTHESIS", "repeatable"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point TTCALLOC_HOME at a fresh temporary directory so no test sees another's cache."""
    home = tmp_path_factory.mktemp("ttcalloc-home")
    monkeypatch.setenv("TTCALLOC_HOME", str(home))
    return home


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark and sample files; tests using them skip when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone without ../shared)")
    return SHARED_DATA


def shared_file(shared: Path, name: str) -> Path:
    path = shared / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def _imported(tmp: Path, benchmark: str, samples: str) -> dict[str, Path]:
    """Problems from a benchmark file of ../shared/data and a samples file imported for them."""
    from ttcalloc.stages import data
    from ttcalloc.stages.importer import import_samples

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone without ../shared)")
    paths = {"problems": tmp / "problems.parquet", "samples": tmp / "samples.parquet"}
    data.build_problems(shared_file(SHARED_DATA, benchmark), paths["problems"], "gsm8k")
    import_samples(shared_file(SHARED_DATA, samples), paths["problems"], paths["samples"])
    return paths


@pytest.fixture(scope="session")
def gpt4(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GPT-4 MoT's 12 samples per GSM8K test problem, imported."""
    return _imported(
        tmp_path_factory.mktemp("gpt4"), "gsm8k_test.jsonl", "gsm8k_gpt4_mot_12samples.parquet"
    )


@pytest.fixture(scope="session")
def codex(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Codex GSM8K samples imported, estimated (maj@1..5, cross-fitted) and solved at B=2."""
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    tmp = tmp_path_factory.mktemp("codex")
    paths = _imported(tmp, "gsm8k_train.jsonl", "gsm8k_train_activeprompt_codex_10samples.parquet")
    paths |= {"curves": tmp / "curves.parquet", "allocation": tmp / "allocation.parquet"}
    estimate_curves(
        paths["samples"], paths["curves"], EstimateOptions(ks=(1, 2, 3, 4, 5)), paths["problems"]
    )
    solve_allocation(
        paths["curves"], paths["allocation"], SolveOptions(budgets=(2.0,)), paths["problems"]
    )
    return paths
