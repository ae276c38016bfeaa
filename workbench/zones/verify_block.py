"""One `lake verify` task: a block of a landed file against its lake and quarantine rows.

The comparison runs in DuckDB over Arrow tables (registered, not copied): the source block typed
by :func:`workbench.zones.reference_types.typed`, the lake rows and the quarantine rows of the
block's line range. Each side gets a 64-bit fingerprint per row (``hash`` of the typed values;
of the texts for quarantine); only lines whose fingerprints differ are looked at column by
column, and only the first few of those are turned into Python values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.zones.reference import UNSPLIT, BlockLines, ReadOptions, block_lines, source_table
from workbench.zones.reference_types import ARROW_TYPES, quoted, typed

BATCH, FILE, LINE, TEXT = "_batch_id", "_file", "_line", "_text"
KINDS = ("missing", "in_both", "duplicated", "extra")


@dataclass(frozen=True)
class BlockTask:
    """Everything one task needs (shipped to a worker): where the block is, what the catalog
    declares, and which row groups of the lake and quarantine versions may hold its rows."""

    batch_id: str
    name: str
    path: str
    index: int
    start: int
    stop: int | None
    first_line: int
    line_range: tuple[int | None, int | None]
    header: tuple[str, ...]
    schema: dict[str, str]
    markers: tuple[tuple[str, tuple[str, ...]], ...]  # per column, texts read as missing
    delimiter: str
    promoted: bool
    samples: int
    lake: tuple[tuple[str, int], ...]
    held: tuple[tuple[str, int], ...]
    points: str | None = None  # seek points of a .gz, recorded by this verify


@dataclass(frozen=True)
class BlockOutcome:
    """Counts and a few sample differences (tuples in ``Difference`` field order)."""

    batch_id: str
    name: str
    index: int
    first_line: int
    line_ends: int
    aligned: bool
    lines: int
    in_lake: int
    held: int
    counts: dict[str, int]
    values: dict[str, int]
    samples: list[tuple]


def check_block(task: BlockTask, *after: object) -> BlockOutcome:
    """Read, type and compare one block; memory follows the block's size. ``after``: tasks
    that must run first (the recording of the seek points the block is read from)."""
    lines = block_lines(Path(task.path), task.start, task.stop, task.first_line, task.points)
    # Every field as written: which texts mean "missing" is decided per column below.
    opts = ReadOptions(list(task.header), list(task.schema), (), task.delimiter)
    source = source_table(lines, task.start == 0, opts)
    lake = stored_rows(task.lake, task, {c: ARROW_TYPES[k] for c, k in task.schema.items()})
    held = stored_rows(task.held, task, {c: pa.string() for c in task.schema} | {TEXT: pa.string()})
    with duckdb.connect() as con:
        con.execute("SET threads = 1")  # one task per worker thread already
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")  # a datetime without a zone is UTC
        con.register("s", source)
        con.register("l", lake)
        con.register("q", held)
        con.execute(f"CREATE TEMP VIEW sm AS {_missing_select(task)}")
        _fingerprints(con, task.schema)
        counts, samples = _accounting(con, task)
        values, value_samples = _values(con, task, lines)
        counts["quarantine_text"], text_samples = _quarantine_text(con, task, lines)
    return BlockOutcome(
        task.batch_id, task.name, task.index, task.first_line, lines.line_ends, lines.aligned,
        source.num_rows, lake.num_rows, held.num_rows, counts, values,
        (samples + value_samples + text_samples)[: task.samples],
    )  # fmt: skip


def stored_rows(groups, task: BlockTask, types: dict[str, pa.DataType]) -> pa.Table:
    """The rows of the task's batch, file and line range in these row groups."""
    wanted = [*types, LINE]
    lo, hi = task.line_range
    parts = []
    for path, index in groups:
        parquet = pq.ParquetFile(path)
        present = set(parquet.schema_arrow.names)
        table = parquet.read_row_group(index, [c for c in [*wanted, BATCH, FILE] if c in present])
        keep = pc.and_(pc.equal(table[BATCH], task.batch_id), pc.equal(table[FILE], task.name))
        if lo is not None:
            keep = pc.and_(keep, pc.greater_equal(table[LINE], lo))
        if hi is not None:
            keep = pc.and_(keep, pc.less(table[LINE], hi))
        table = table.filter(keep)
        parts.append(
            pa.table(
                {c: table[c] if c in present else pa.nulls(table.num_rows, types.get(c))
                 for c in wanted}
            )
        )  # fmt: skip
    if not parts:
        return pa.schema([*types.items(), (LINE, pa.int64())]).empty_table()
    return pa.concat_tables(parts, promote_options="permissive")


def _fingerprints(con: duckdb.DuckDBPyConnection, schema: dict[str, str]) -> None:
    """``src``: per source line its fingerprint (the typed values and how many texts their
    type does not admit); ``lk``: per lake row the fingerprint of its values; ``qt``: per
    quarantined row its text and the fingerprint of its field texts. Only these small tables
    are materialised; values are pulled again for differing lines only."""
    n = range(len(schema))
    vs = ", ".join(f"v{i}" for i in n)
    con.execute(f"""CREATE TEMP TABLE src AS
        SELECT _line, {UNSPLIT}, hash({vs}, CAST({_bad(schema)} AS INTEGER)) AS fp
        FROM ({_typed_select(schema, "sm")})""")
    lake = ", ".join(quoted(c) for c in schema)
    con.execute(f"""CREATE TEMP TABLE lk AS
        SELECT _line, hash({lake}, CAST(0 AS INTEGER)) AS fp FROM l""")
    texts = ", ".join(f"CAST({quoted(c)} AS VARCHAR)" for c in schema)
    con.execute(f"CREATE TEMP TABLE qt AS SELECT _line, _text, hash({texts}) AS tfp FROM q")


_LINES_TO_CHECK = "(FROM sm SEMI JOIN dl USING (_line))"


def _missing_select(task: BlockTask) -> str:
    """The source with each column's missing-value texts made NULL (what typing sees)."""
    markers = dict(task.markers)
    columns = []
    for c in task.schema:
        texts = ", ".join("'" + m.replace("'", "''") + "'" for m in markers.get(c, ()))
        masked = (
            f"CASE WHEN {quoted(c)} IN ({texts}) THEN NULL ELSE {quoted(c)} END"
            if texts
            else quoted(c)
        )
        columns.append(f"{masked} AS {quoted(c)}")
    return f"SELECT _line, {UNSPLIT}, {', '.join(columns)} FROM s"


def _typed_select(schema: dict[str, str], table: str) -> str:
    texts = ", ".join(f"{quoted(c)} AS t{i}" for i, c in enumerate(schema))
    values = ", ".join(f"{typed(c, k)} AS v{i}" for i, (c, k) in enumerate(schema.items()))
    return f"SELECT _line, {UNSPLIT}, {texts}, {values} FROM {table}"


def _bad(schema: dict[str, str]) -> str:
    return " + ".join(
        f"CAST(t{i} IS NOT NULL AND v{i} IS NULL AS INTEGER)" for i in range(len(schema))
    )


def _accounting(con, task: BlockTask) -> tuple[dict[str, int], list[tuple]]:
    """Each source line once in lake or quarantine; no stored line the source lacks."""
    rows = con.execute(f"""
        WITH lc AS (SELECT _line, count(*) AS n FROM lk GROUP BY _line),
        qc AS (SELECT _line, count(*) AS n FROM qt GROUP BY _line),
        st AS (SELECT coalesce(lc._line, qc._line) AS _line, coalesce(lc.n, 0) AS nl,
                      coalesce(qc.n, 0) AS nq FROM lc FULL JOIN qc ON lc._line = qc._line),
        j AS (SELECT coalesce(src._line, st._line) AS _line, src._line IS NOT NULL AS known,
                     coalesce(nl, 0) AS nl, coalesce(nq, 0) AS nq
              FROM src FULL JOIN st ON src._line = st._line),
        k AS (SELECT _line, 'missing' AS kind FROM j WHERE known AND nl + nq = 0 AND {task.promoted}
              UNION ALL SELECT _line, 'in_both' FROM j WHERE nl > 0 AND nq > 0
              UNION ALL SELECT _line, 'duplicated' FROM j WHERE nl > 1 OR nq > 1
              UNION ALL SELECT _line, 'extra' FROM j WHERE NOT known AND nl + nq > 0)
        SELECT kind, count(*), list(_line ORDER BY _line)[1:{task.samples}] FROM k GROUP BY kind
        """).fetchall()  # fmt: skip
    counts = {kind: 0 for kind in KINDS}
    samples = []
    for kind, n, lines in rows:
        counts[kind] = n
        samples += [(kind, task.batch_id, task.name, line) for line in lines]
    return counts, samples


def _values(con, task: BlockTask, lines: BlockLines) -> tuple[dict[str, int], list[tuple]]:
    """Per column, lake rows whose value is not what the source text means; ``(line)`` for a
    lake row of a line the reference cannot split."""
    n = range(len(task.schema))
    con.execute(f"""CREATE TEMP TABLE dl AS SELECT DISTINCT lk._line FROM lk JOIN src
        ON lk._line = src._line WHERE lk.fp <> src.fp OR src.{UNSPLIT} IS NOT NULL""")
    lake = ", ".join(f"{quoted(c)} AS w{i}" for i, c in enumerate(task.schema))
    differs = ", ".join(
        f"(w{i} IS DISTINCT FROM v{i} OR (t{i} IS NOT NULL AND v{i} IS NULL)) AS d{i}" for i in n
    )
    pairs = ", ".join(f"CAST(w{i} AS VARCHAR), t{i}" for i in n)
    con.execute(f"""CREATE TEMP TABLE d AS
        SELECT _line, {UNSPLIT} AS why, {differs}, {pairs}
        FROM (SELECT _line, {lake} FROM l SEMI JOIN dl USING (_line))
        JOIN ({_typed_select(task.schema, _LINES_TO_CHECK)}) USING (_line)""")
    per_column = ", ".join(f"count(*) FILTER (WHERE why IS NULL AND d{i})" for i in n)
    unsplit, *counts = con.execute(
        f"SELECT count(*) FILTER (WHERE why IS NOT NULL), {per_column} FROM d"
    ).fetchone()
    values = {c: k for c, k in zip(task.schema, counts, strict=True) if k}
    if unsplit:
        values["(line)"] = unsplit
    return values, _value_samples(con, task, lines)


def _value_samples(con, task: BlockTask, lines: BlockLines) -> list[tuple]:
    samples = []
    columns = list(task.schema)
    for row in con.execute(f"SELECT * FROM d ORDER BY _line LIMIT {task.samples}").fetchall():
        line, why, flags = row[0], row[1], row[2 : 2 + len(columns)]
        pairs = row[2 + len(columns) :]
        if why is not None:
            text = lines.text(int(np.searchsorted(lines.numbers, line)))
            samples.append(("values", task.batch_id, task.name, line, "(line)", None, text))
            continue
        for i, column in enumerate(columns):
            if flags[i]:
                lake, source = pairs[2 * i], pairs[2 * i + 1]
                samples.append(("values", task.batch_id, task.name, line, column, lake, source))
    return samples


def _quarantine_text(con, task: BlockTask, lines: BlockLines) -> tuple[int, list[tuple]]:
    """Quarantined rows must keep their line: its text (``_text``) or its fields as text."""
    texts = ", ".join(quoted(c) for c in task.schema)
    held = ", ".join(f"CAST({quoted(c)} AS VARCHAR)" for c in task.schema)
    rows = con.execute(f"""
        WITH sq AS (SELECT _line, {UNSPLIT}, hash({texts}) AS tfp FROM s SEMI JOIN qt USING (_line))
        SELECT qt._line, qt._text, qt._text IS NULL
               AND (sq.{UNSPLIT} IS NOT NULL OR qt.tfp <> sq.tfp) AS fields_differ
        FROM qt JOIN sq ON qt._line = sq._line
        WHERE qt._text IS NOT NULL OR sq.{UNSPLIT} IS NOT NULL OR qt.tfp <> sq.tfp
        ORDER BY qt._line""").fetchall()
    # Only unparsable lines (rare by nature) and differing rows get here, one by one.
    bad, samples = 0, []
    fields = dict(con.execute(f"SELECT _line, [{held}] FROM q").fetchall()) if rows else {}
    for line, text, fields_differ in rows:
        source = lines.text(int(np.searchsorted(lines.numbers, line)))
        if fields_differ or (text is not None and text != source):
            bad += 1
            stored = text if text is not None else _joined(fields.get(line, []))
            if len(samples) < task.samples:
                samples.append(
                    ("quarantine_text", task.batch_id, task.name, line, None, stored, source)
                )
    return bad, samples


def _joined(fields: list) -> str:
    return ",".join("" if f is None else f for f in fields)
