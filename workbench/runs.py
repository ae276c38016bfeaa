"""The run store: one SQLite file recording every run and every step of it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    catalog TEXT, targets TEXT, cluster TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step TEXT NOT NULL, kind TEXT NOT NULL,
    target TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL, seconds REAL,
    rows_in INTEGER, rows_out INTEGER, inputs TEXT, outputs TEXT, details TEXT, error TEXT,
    PRIMARY KEY (run_id, step)
);
"""
# Columns added after the first release: the plan's record of each step (see pipeline/plan.py).
_ADDED = {"spec_hash": "TEXT", "workbench": "TEXT", "reason": "TEXT"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass(frozen=True)
class RunStore:
    """Records runs in ``runs.sqlite``; one short transaction per write, safe across processes."""

    path: Path

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.executescript(_SCHEMA)
        have = {row[1] for row in con.execute("PRAGMA table_info(steps)")}
        for column, kind in _ADDED.items():
            if column not in have:  # a run store written by an older workbench
                con.execute(f"ALTER TABLE steps ADD COLUMN {column} {kind}")
        return con

    def start_run(self, *, catalog: str, targets: list[str], cluster: str) -> str:
        run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, NULL, 'running', ?, ?, ?, NULL)",
                (run_id, _now(), catalog, json.dumps(targets), cluster),
            )
        return run_id

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "UPDATE runs SET finished_at = ?, status = ?, error = ? WHERE run_id = ?",
                (_now(), status, error, run_id),
            )

    def record_step(
        self,
        run_id: str,
        *,
        step: str,
        kind: str,
        target: str,
        status: str,
        started_at: str,
        seconds: float,
        rows_in: int | None = None,
        rows_out: int | None = None,
        inputs: Any = None,
        outputs: Any = None,
        details: Any = None,
        error: str | None = None,
        spec_hash: str | None = None,
        workbench: str | None = None,
        reason: str | None = None,
    ) -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO steps (run_id, step, kind, target, status, started_at, "
                "seconds, rows_in, rows_out, inputs, outputs, details, error, spec_hash, "
                "workbench, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    step,
                    kind,
                    target,
                    status,
                    started_at,
                    seconds,
                    rows_in,
                    rows_out,
                    json.dumps(inputs, default=str),
                    json.dumps(outputs, default=str),
                    json.dumps(details, default=str),
                    error,
                    spec_hash,
                    workbench,
                    reason,
                ),
            )

    def last_success(self, step: str) -> dict | None:
        """The newest record of ``step`` that succeeded or was reused, with its plan columns."""
        rows = self._query(
            "SELECT * FROM steps WHERE step = ? AND status IN ('succeeded', 'reused') "
            "AND spec_hash IS NOT NULL ORDER BY started_at DESC LIMIT 1",
            (step,),
        )
        return rows[0] if rows else None

    def runs(self, limit: int = 20) -> list[dict]:
        return self._query("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))

    def steps(self, run_id: str) -> list[dict]:
        return self._query("SELECT * FROM steps WHERE run_id = ? ORDER BY started_at", (run_id,))

    def _query(self, sql: str, args: tuple) -> list[dict]:
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]


def now() -> str:
    return _now()
