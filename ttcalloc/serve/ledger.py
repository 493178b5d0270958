"""The fleet ledger of ``ttcalloc serve``: what every window of requests spent, in SQLite.

One row per window (a *round*: the requests decided together at one price), committed as the
window is answered, in WAL mode, so that the totals (requests, spend) survive a restart and a
``kill -9``: a window whose row is committed is counted, one still in flight is not (its
requests got no answer).  Rows whose budget a request's header set (``override``) are kept
apart from the fleet's: the fleet's mean cost per request is held at ``--budget`` over its own.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ttcalloc.common.errors import OutputError

FILE = "ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,          -- unix time the window was answered
    requests INTEGER NOT NULL, -- requests answered in the window
    samples INTEGER NOT NULL,  -- samples drawn for them
    spend REAL NOT NULL,       -- their cost, in the policy's cost unit
    budget REAL NOT NULL,      -- the mean cost per request the window was decided at
    price REAL,                -- the window's price (static: mu; adaptive: its last round's)
    override INTEGER NOT NULL  -- 1: a request's budget header set the budget
)
"""


@dataclass(frozen=True)
class Totals:
    """What the committed windows hold: requests, samples and spend."""

    requests: int = 0
    samples: int = 0
    spend: float = 0.0

    @property
    def mean_cost(self) -> float | None:
        return self.spend / self.requests if self.requests else None


class FleetLedger:
    """The ledger file ``<state dir>/ledger.sqlite`` (created on first use)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            self.db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"--state-dir {state_dir}: cannot open the ledger: {exc}") from exc

    def commit(
        self,
        requests: int,
        samples: int,
        spend: float,
        budget: float,
        price: float | None,
        override: bool,
    ) -> None:
        """Record one answered window (one transaction)."""
        with self.db:
            self.db.execute(
                "INSERT INTO rounds (at, requests, samples, spend, budget, price, override) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), requests, samples, spend, budget, price, int(override)),
            )

    def totals(self, override: bool | None = False) -> Totals:
        """The fleet's totals (``override`` False), the header-budget ones (True), or all."""
        where = "" if override is None else f" WHERE override = {int(override)}"
        row = self.db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(requests), 0), COALESCE(SUM(samples), 0), "
            f"COALESCE(SUM(spend), 0) FROM rounds{where}"
        ).fetchone()
        return Totals(int(row[1]), int(row[2]), float(row[3]))

    def last_price(self) -> float | None:
        row = self.db.execute(
            "SELECT price FROM rounds WHERE override = 0 ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def close(self) -> None:
        """Checkpoint the WAL into the database file and close it."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()
