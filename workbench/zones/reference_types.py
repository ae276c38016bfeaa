"""The declared types, applied to source text in SQL (DuckDB), independently of promotion.

Promotion casts with Arrow compute and pandas (``validation/rules.py``); `lake verify` casts the
same text with DuckDB's ``TRY_CAST``, gated by the forms the catalog documents, because DuckDB
alone admits more than the catalog does (it rounds ``11.5`` to the int 12, reads ``1_000``,
``0x10``, ``inf``, and ``t``/``f`` as booleans). What each type admits here:

- int: ``[+-]digits`` (spaces around allowed) within int64, or a float form whose value is
  whole and below 2**53 in size (where float64 holds every integer) (``12.0``, ``1e3``); BIGINT.
- float: ``[+-]`` digits with an optional ``.`` and exponent (``-.5``, ``5.``, ``1E5``), never
  ``inf`` or ``nan``; DOUBLE.
- string: any text; VARCHAR.
- bool: ``true false 1 0 yes no`` in any case, without spaces; BOOLEAN.
- datetime: ISO 8601 (``YYYY-MM-DD`` then anything DuckDB's TIMESTAMPTZ cast reads); no zone
  means UTC; TIMESTAMPTZ.
- date: ISO 8601 as DuckDB's DATE cast reads it; a time part is dropped (the written date);
  TIMESTAMP at midnight.

A text that the declared type does not admit types to NULL and sets the row's ``_bad`` flag for
that column: a lake row can never match it. Where the two sides admit different forms for a
value that reached the lake, the row is reported as a difference, naming both values.
"""

from __future__ import annotations

import pyarrow as pa

_INT = r"\s*[+-]?\d+\s*"
_FLOAT = r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"
_BOOL = "('true', 'false', '1', '0', 'yes', 'no')"
_ISO = r"\s*\d{4}-\d{1,2}-\d{1,2}([T ].*)?"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def typed(column: str, kind: str) -> str:
    """SQL for the value the lake must hold for ``column``'s text (NULL when missing or not
    admitted)."""
    c = quoted(column)
    if kind == "string":
        return c
    if kind == "int":
        as_float = f"TRY_CAST({c} AS DOUBLE)"
        return (
            f"CASE WHEN regexp_full_match({c}, '{_INT}') THEN TRY_CAST(trim({c}) AS BIGINT) "
            f"WHEN regexp_full_match({c}, '{_FLOAT}') AND {as_float} = floor({as_float}) "
            f"AND abs({as_float}) < 9007199254740992.0 THEN CAST({as_float} AS BIGINT) END"
        )
    if kind == "float":
        return (
            f"CASE WHEN regexp_full_match({c}, '{_FLOAT}') THEN TRY_CAST(trim({c}) AS DOUBLE) END"
        )
    if kind == "bool":
        return f"CASE WHEN lower({c}) IN {_BOOL} THEN lower({c}) IN ('true', '1', 'yes') END"
    if kind == "datetime":
        return f"CASE WHEN regexp_full_match({c}, '{_ISO}') THEN TRY_CAST({c} AS TIMESTAMPTZ) END"
    if kind == "date":
        return (
            f"CASE WHEN regexp_full_match({c}, '{_ISO}') "
            f"THEN CAST(TRY_CAST({c} AS DATE) AS TIMESTAMP) END"
        )
    raise ValueError(f"unknown column type {kind!r} for {column}")


def not_admitted(column: str, kind: str) -> str:
    """SQL true when the text is there but its type does not admit it."""
    return f"({quoted(column)} IS NOT NULL AND ({typed(column, kind)}) IS NULL)"


# The Arrow type each declared type has in the lake (what promotion writes).
ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "date": pa.timestamp("us"),
}
LAKE_TYPES = {kind: str(t) for kind, t in ARROW_TYPES.items()}
