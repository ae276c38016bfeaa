"""Source files as users have them: folders with one base name, old line ends, a BOM, files
kept in place while new ones arrive, and files big enough to be read in blocks (issue 14).

Every check compares the lake and the quarantine with the file read on its own (Python's csv
module over the raw bytes), line by line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.io.textscan import GRAIN, TextScan, scan_text

CATALOG = """\
version: 1
workspace: {ws}
datasets:
  items:
    zone: lake
    load: {load}
    source: {{path: "{pattern}"}}
    schema: {{key: string, qty: int, day: date, note: string}}
    thresholds: {{max_quarantined_fraction: 1.0}}
    rules:
      - {{rule: unique, columns: [key]{across}}}
"""


def _catalog(tmp_path: Path, pattern: str, *, load: str = "replace", across: str = "") -> tuple:
    path = tmp_path / "catalog.yaml"
    extra = f", across: {across}" if across else ""
    path.write_text(CATALOG.format(ws=tmp_path / "ws", pattern=pattern, load=load, across=extra))
    catalog = wb.load_catalog(path)
    return catalog, wb.Workspace.for_catalog(catalog)


def _lake(ws) -> pd.DataFrame:
    return wb.read_table(ws.path("lake", "items")).compute().sort_values(["_file", "_line"])


def _quarantine(ws) -> pd.DataFrame:
    return wb.read_table(ws.path("quarantine", "items")).compute().sort_values(["_file", "_line"])


def _by_hand(data: bytes) -> dict[int, list[str]]:
    """Line number -> fields of each non-empty data line, split by Python's csv module."""
    text = data.decode("utf-8-sig")
    lines = re.split(r"\r\n|\n|\r", text)
    out = {}
    for number, line in enumerate(lines, start=1):
        if line and number > 1:
            out[number] = next(csv.reader([line]))
    return out


def _rows(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    days = pd.date_range("1992-01-01", periods=2500, freq="D").strftime("%Y-%m-%d")
    out = []
    for i in range(n):
        note = rng.choice(["plain", '"with, comma"', '"say ""hi"""', ""])
        out.append(f"k{i:06d},{rng.integers(0, 1000)},{days[rng.integers(0, len(days))]},{note}")
    return out


def test_same_base_name_in_two_folders_lands_both(client, tmp_path):
    for folder, keys in (("a", ["a1", "a2"]), ("b", ["b1", "b2", "b3"])):
        (tmp_path / "in" / folder).mkdir(parents=True)
        body = "".join(f"{k},1,2024-01-01,x\n" for k in keys)
        (tmp_path / "in" / folder / "part.csv").write_text("key,qty,day,note\n" + body)
    catalog, ws = _catalog(tmp_path, f"{tmp_path}/in/*/part.csv")
    result = wb.run_pipeline(catalog, ws, ["items"])
    promote = next(s for s in result.steps if s.step == "promote:items")
    assert promote.rows_in == 5 and promote.rows_out == 5
    lake = _lake(ws)
    assert sorted(zip(lake._file, lake.key, strict=True)) == [
        ("a/part.csv", "a1"),
        ("a/part.csv", "a2"),
        ("b/part.csv", "b1"),
        ("b/part.csv", "b2"),
        ("b/part.csv", "b3"),
    ]
    batch = wb.list_batches(ws, "items")[-1]
    assert all(p.is_file() for p in batch.paths(ws))


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"\n"])
def test_any_line_end_reads_every_row(client, tmp_path, end):
    rows = _rows(50, seed=len(end))
    data = end.join([b"key,qty,day,note", *(r.encode() for r in rows)]) + end
    (tmp_path / "items.csv").write_bytes(data)
    catalog, ws = _catalog(tmp_path, f"{tmp_path}/items.csv")
    wb.run_pipeline(catalog, ws, ["items"])
    lake = _lake(ws)
    want = _by_hand(data)
    assert len(lake) == len(want) == 50
    for line, key, qty, note in zip(lake._line, lake.key, lake.qty, lake.note, strict=True):
        assert [key, str(qty)] == want[line][:2]
        assert (note if isinstance(note, str) else "") == want[line][3]


def test_a_bom_does_not_change_how_the_first_column_is_read(client, tmp_path):
    data = b"\xef\xbb\xbfkey,qty,day,note\n007,1,2024-01-01,x\n0008,2,2024-01-02,y\n"
    (tmp_path / "items.csv").write_bytes(data)
    catalog, ws = _catalog(tmp_path, f"{tmp_path}/items.csv")
    wb.run_pipeline(catalog, ws, ["items"])
    lake = _lake(ws)
    assert lake.key.tolist() == ["007", "0008"]
    assert lake._line.tolist() == [2, 3]


def test_append_lands_only_files_not_yet_promoted(client, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "day1.csv").write_text("key,qty,day,note\nk1,1,2024-01-01,x\nk2,2,2024-01-01,x\n")
    catalog, ws = _catalog(tmp_path, f"{data}/*.csv", load="append")
    wb.run_pipeline(catalog, ws, ["items"])
    (data / "day2.csv").write_text("key,qty,day,note\nk3,3,2024-01-02,y\n")
    result = wb.run_pipeline(catalog, ws, ["items"])
    land = next(s for s in result.steps if s.step == "land:items")
    assert land.details["files"] == ["day2.csv"]
    wb.run_pipeline(catalog, ws, ["items"])  # nothing new: no row twice
    lake = _lake(ws)
    assert sorted(lake.key) == ["k1", "k2", "k3"]


def test_unique_across_the_lake_catches_a_key_promoted_before(client, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "day1.csv").write_text("key,qty,day,note\nk1,1,2024-01-01,x\nk2,2,2024-01-01,x\n")
    catalog, ws = _catalog(tmp_path, f"{data}/*.csv", load="append", across="lake")
    wb.run_pipeline(catalog, ws, ["items"])
    (data / "day2.csv").write_text("key,qty,day,note\nk2,5,2024-01-02,again\nk3,3,2024-01-02,y\n")
    wb.run_pipeline(catalog, ws, ["items"])
    lake, q = _lake(ws), _quarantine(ws)
    assert sorted(lake.key) == ["k1", "k2", "k3"]
    assert lake.loc[lake.key == "k2", "qty"].tolist() == [2]
    assert q[["key", "_file", "_line", "_reasons"]].values.tolist() == [
        ["k2", "day2.csv", 2, "unique:key"]
    ]


def _promote_with_blocks(tmp_path: Path, data: bytes, block_bytes: int, tag: str):
    folder = tmp_path / tag
    folder.mkdir()
    (folder / "items.csv").write_bytes(data)
    catalog, ws = _catalog(folder, f"{folder}/items.csv")
    with dask.config.set({"workbench.block-bytes": block_bytes}):
        result = wb.run_pipeline(catalog, ws, ["items"])
    return ws, result


def test_a_file_read_in_blocks_equals_the_file(client, tmp_path):
    """Blocks of a few KB over a file with CRLF ends, quoted commas and doubled quotes, empty
    lines, a BOM, rows with too few fields and a quoted line break: the lake and quarantine
    equal both the file read by hand and the same file read as one block."""
    rows = _rows(3000, seed=3)
    rows[1000] = "short,1"
    rows[2000] = ""
    rows[2500] = 'k-multi,1,2024-01-01,"two\r\nlines"'
    data = b"\xef\xbb\xbf" + "\r\n".join(["key,qty,day,note", *rows]).encode() + b"\r\n"
    ws_small, result = _promote_with_blocks(tmp_path, data, 4096, "small")
    ws_whole, _ = _promote_with_blocks(tmp_path, data, 1 << 30, "whole")
    batch = wb.list_batches(ws_small, "items")[-1]
    assert len(batch.files[0].blocks) > 20
    lake, whole = _lake(ws_small), _lake(ws_whole)
    columns = ["key", "qty", "day", "note", "_line"]
    pd.testing.assert_frame_equal(
        lake[columns].reset_index(drop=True), whole[columns].reset_index(drop=True)
    )
    want = _by_hand(data)
    for line, key, qty, day, note in lake[["_line", "key", "qty", "day", "note"]].itertuples(
        index=False
    ):
        fields = want[line]
        assert [key, str(qty), day.strftime("%Y-%m-%d")] == fields[:3], line
        assert (note if isinstance(note, str) else "") == fields[3], line
    q = _quarantine(ws_small)
    promote = next(s for s in result.steps if s.step == "promote:items")
    assert len(lake) + len(q) == promote.rows_in == batch.rows
    assert set(lake._line).isdisjoint(q._line)
    assert set(lake._line) | set(q._line) == set(want)
    assert {2502, 2503} <= set(q._line)  # the quoted line break: both halves kept, with text
    assert q.loc[q._line == 1002, "_reasons"].tolist() == ["parse:field_count"]


def test_compressed_file_in_blocks(client, tmp_path):
    import gzip

    rows = _rows(2000, seed=5)
    text = "\n".join(["key,qty,day,note", *rows]).encode() + b"\n"
    (tmp_path / "items.csv.gz").write_bytes(gzip.compress(text))
    catalog, ws = _catalog(tmp_path, f"{tmp_path}/items.csv.gz")
    with dask.config.set({"workbench.block-bytes": 8192}):
        wb.run_pipeline(catalog, ws, ["items"])
    lake = _lake(ws)
    want = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    assert lake.key.tolist() == want.key.tolist()
    assert lake._line.tolist() == list(range(2, 2002))
    assert lake.day.dt.strftime("%Y-%m-%d").tolist() == want.day.tolist()


@settings(max_examples=200, deadline=None)
@given(
    starts=st.lists(st.integers(1, 10_000), max_size=30, unique=True),
    extra=st.integers(1, 5_000),
    block=st.integers(1, 20_000),
    at_least=st.integers(1, 8),
)
def test_grouped_blocks_are_recorded_starts_covering_the_text(starts, extra, block, at_least):
    """Grouping keeps the first start, uses only recorded starts (each a line start with its
    number), makes max(ceil(size / block), at_least) blocks when there are enough starts, and
    its spans cover the text end to end."""
    starts = sorted(starts)
    size = (starts[-1] if starts else 0) + extra
    scan = TextScan(0, ((0, 1), *((s, s + 1) for s in starts)), size)
    plan = scan.grouped(block, at_least)
    assert plan.blocks[0] == (0, 1) and set(plan.blocks) <= set(scan.blocks)
    assert list(plan.blocks) == sorted(plan.blocks)
    want = max(-(-size // block), at_least)
    assert len(plan.blocks) == min(want, len(scan.blocks))
    spans = plan.spans()
    assert spans[0][0] == 0 and spans[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(spans[:-1], spans[1:], strict=True))


def test_a_file_under_two_blocks_is_read_by_every_worker(client, tmp_path):
    """A file between one and two blocks long was one task, leaving the second core idle: on
    two workers it is now read in two blocks, with the same lake as when read in one."""
    rows = _rows(4000, seed=11)
    data = "\n".join(["key,qty,day,note", *rows]).encode() + b"\n"
    block = len(data) * 2 // 3  # 1.5 blocks: one task by size alone
    ws_split, _ = _promote_with_blocks(tmp_path, data, block, "split")
    ws_whole, _ = _promote_with_blocks(tmp_path, data, 1 << 30, "whole")
    files = DeltaTable(str(ws_split.path("lake", "items"))).file_uris()
    assert len(files) == 2
    sizes = sorted(pq.ParquetFile(f).metadata.num_rows for f in files)
    assert sizes[0] > 1000  # an even cut, not a sliver
    columns = ["key", "qty", "day", "note", "_line"]
    pd.testing.assert_frame_equal(
        _lake(ws_split)[columns].reset_index(drop=True),
        _lake(ws_whole)[columns].reset_index(drop=True),
    )
    assert _lake(ws_split)._line.tolist() == list(range(2, 4002))


def test_no_block_starts_inside_a_long_quoted_field(tmp_path):
    """A quoted field holding 5,000 line breaks right past a cut: the scan must go on to the
    end of the field, not start a block inside it."""
    grain = 64 << 10  # far more than the field: the stretch rule does not come into it
    rows = _rows(4000, seed=7)
    before = next(n for n in range(len(rows)) if len("\n".join(rows[:n])) > grain - 200)
    field = '"' + "\n".join(f"part {i}" for i in range(5000)) + '"'
    lines = ["key,qty,day,note", *rows[:before], f"k-long,1,2024-01-01,{field}", *rows[before:]]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "long.csv"
    path.write_text(text)
    scan = scan_text(path, grain * GRAIN)
    inside = (text.index(field), text.index(field) + len(field))
    assert inside[0] < grain < inside[1]  # the first cut falls inside the field
    starts = [offset for offset, _ in scan.blocks]
    assert any(s > inside[1] for s in starts) and any(s < inside[0] for s in starts)
    assert not [s for s in starts if inside[0] < s <= inside[1]]
    for offset, line in scan.blocks:
        assert offset == 0 or text[offset - 1] == "\n"
        assert text[:offset].count("\n") + 1 == line


def test_a_gz_is_read_in_blocks_from_its_seek_points(client, tmp_path):
    """Landing keeps seek points beside a .gz (two gzip members here, as `cat a.gz b.gz`
    makes); every block read through them equals the text sliced by hand, and the lake equals
    the file, line by line."""
    import gzip

    from workbench.io.gzseek import seek_points_path
    from workbench.io.textscan import read_range

    rows = _rows(300_000, seed=13)  # 10 MB of text: zran records no points in a small file
    text = "\n".join(["key,qty,day,note", *rows]).encode() + b"\n"
    half = text.index(b"\n", len(text) // 2) + 1
    (tmp_path / "items.csv.gz").write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:]))
    catalog, ws = _catalog(tmp_path, f"{tmp_path}/items.csv.gz")
    with dask.config.set({"workbench.block-bytes": 4 << 20}):
        wb.run_pipeline(catalog, ws, ["items"])
    batch = wb.list_batches(ws, "items")[-1]
    (landed,) = batch.paths(ws)
    assert seek_points_path(landed).stat().st_size > 32 << 10  # at least one point past the start
    spans = batch.files[0].scan(landed).spans()
    assert len(spans) > 2
    for start, stop, line in spans:
        assert read_range(landed, start, stop) == text[start:stop]
        assert text[:start].count(b"\n") + 1 == line
    lake = _lake(ws)
    want = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    assert lake._line.tolist() == list(range(2, len(rows) + 2))
    assert lake.key.tolist() == want.key.tolist()
    assert lake.qty.astype(str).tolist() == want.qty.tolist()
    assert lake.day.dt.strftime("%Y-%m-%d").tolist() == want.day.tolist()
