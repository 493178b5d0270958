"""Shared fixtures: an isolated work dir for every test, and the real data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

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
