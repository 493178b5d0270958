"""The fleet ledger of ``ttcalloc serve``: what every window of requests spent, in SQLite.

One row per window (a *round*: the requests decided together at one price), committed as the
window is answered, in WAL mode, so that the totals (requests, spend) survive a restart and a
``kill -9``: a window whose row is committed is counted, one still in flight is not (its
requests got no answer).  Rows whose budget a request's header set (``override``) are kept
apart from the fleet's: the fleet's mean cost per request is held at ``--budget`` over its own.

Writes go through their own connection, one at a time, and may run on a worker thread (the
server's event loop does not wait for a lock another process holds); reads (the totals) use
another connection, which in WAL mode a writer's lock does not block.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError, OutputError, os_reason

FILE = "ledger.sqlite"
LOCK = "ledger.lock"  # held (flock) by the one server whose ledger it is
VERSION = 1  # PRAGMA user_version of the ledgers this code writes (0: before it was set)
COLUMNS = ("id", "at", "requests", "samples", "spend", "budget", "price", "override")
BUSY_S = 2.0  # how long a write waits for a lock another process holds on the file
BUSY_ENV = "TTCALLOC_LEDGER_BUSY_SECONDS"  # another wait than BUSY_S (tests hold the lock)

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


class LedgerUnwritable(Exception):
    """A window's row could not be written (disk full, read-only, locked): it is kept in
    memory and written with the next one that can be."""


class FleetLedger:
    """The ledger file ``<state dir>/ledger.sqlite`` (created on first use), held by one
    server at a time (``ledger.lock``).

    Raises (when opened):
        InputError: another server holds it, or the file is not a ledger this code can read
            (not SQLite, another schema, a newer version).
        OutputError: the folder or the file cannot be created or written.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE
        # rows not yet written: appended by the caller's thread, written (and removed from the
        # front) by one flush at a time, on whichever thread calls it
        self.pending: list[tuple[float, int, int, float, float, float | None, int]] = []
        self._writing = threading.Lock()
        self.closed = False
        busy = busy_seconds()
        self._lock = _hold(Path(state_dir))
        try:
            self.db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy
            )
            self._check()
            self.db.execute("PRAGMA journal_mode=WAL")
            with self.db:
                self.db.execute(SCHEMA)
                self.db.execute(f"PRAGMA user_version = {VERSION}")
            self._writer = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy
            )
            self._writer.execute("PRAGMA synchronous=FULL")  # a commit is on disk on return
        except sqlite3.OperationalError as exc:  # cannot open, read-only, locked, disk full
            self._lock.close()
            raise OutputError(f"{self.path}: cannot open the ledger ({exc})") from None
        except sqlite3.DatabaseError as exc:  # not SQLite, or damaged
            self._lock.close()
            raise InputError(f"{self.path}: not a ttcalloc serve ledger ({exc})") from None
        except InputError:
            self._lock.close()
            raise

    def _check(self) -> None:
        """Refuse a database of a newer version or with other tables than a ledger's."""
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > VERSION:
            raise InputError(
                f"{self.path}: a ledger of a newer ttcalloc (version {version}; this one reads "
                f"{VERSION}); upgrade, or give another --state-dir"
            )
        tables = {r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )}  # fmt: skip
        if not tables:
            return
        columns = tuple(r[1] for r in self.db.execute("PRAGMA table_info(rounds)"))
        if tables != {"rounds"} or columns != COLUMNS:
            raise InputError(
                f"{self.path}: not a ttcalloc serve ledger (tables {sorted(tables)}, rounds "
                f"columns {list(columns)}); give another --state-dir"
            )

    def keep(
        self,
        requests: int,
        samples: int,
        spend: float,
        budget: float,
        price: float | None,
        override: bool,
    ) -> None:
        """Keep one answered window's row in memory, for the next :meth:`flush` (which writes
        it with any rows an earlier failure kept, in one transaction)."""
        self.pending.append((time.time(), requests, samples, spend, budget, price, int(override)))

    def flush(self) -> None:
        """Write the rows kept in memory (nothing when none is, or once closed), in one
        transaction; one flush at a time (another waits for it).  It may wait up to the busy
        timeout for a lock another process holds: call it off an event loop.

        Raises:
            LedgerUnwritable: the write failed (the transaction rolled back; rows kept).
        """
        with self._writing:
            rows = list(self.pending)  # rows kept meanwhile are appended after these
            if not rows or self.closed:
                return
            db = self._writer
            try:
                db.execute("BEGIN IMMEDIATE")  # autocommit mode: the rows in one transaction
                try:
                    db.executemany(
                        "INSERT INTO rounds (at, requests, samples, spend, budget, price, "
                        "override) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    db.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise LedgerUnwritable(
                    f"{self.path}: cannot write ({exc}); {len(rows)} windows kept in memory"
                ) from None
            del self.pending[: len(rows)]

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
        """Write what is kept in memory (one warning line if it cannot be: those windows'
        spend is then missing from the books), checkpoint the WAL into the file, close it."""
        try:
            self.flush()
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except LedgerUnwritable as exc:
            warn(f"{exc}; lost at exit: their spend is missing from the ledger")
        except sqlite3.Error:
            pass  # the WAL stays beside the file; the next open reads it
        finally:
            with self._writing:  # a flush on another thread is over
                self.closed = True
                self._writer.close()
                self.db.close()
            self._lock.close()


def busy_seconds() -> float:
    """How long a write waits for a lock another process holds: ``$TTCALLOC_LEDGER_BUSY_SECONDS``,
    else :data:`BUSY_S`."""
    given = os.environ.get(BUSY_ENV, "").strip()
    if not given:
        return BUSY_S
    try:
        value = float(given)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{BUSY_ENV}={given!r}: expected a number of seconds, 0 or more")
    return value


def _hold(state_dir: Path) -> IO[str]:
    """The state folder's lock file, locked (flock) for as long as it is open."""
    lock = state_dir / LOCK
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fh = lock.open("a+")
    except OSError as exc:
        raise OutputError(f"--state-dir {state_dir}: cannot write ({os_reason(exc)})") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise InputError(
            f"--state-dir {state_dir}: its ledger is held by another ttcalloc serve (pid "
            f"{holder}); give each server its own --state-dir"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh
