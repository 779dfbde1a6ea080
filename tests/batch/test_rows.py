"""Reading and planning without Ray: each bad row is named by source, line or row and reason; each user's
plan takes only the interactions its past profile has not seen, and a finished input is not redone."""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefscribe.batch import ItemRow, Reject, Stepping, plan_user, read_source
from prefscribe.batch._users import DONE, ITEM, PAST


def test_jsonl_rows_are_validated_with_their_line_and_reason(tmp_path):
    path = tmp_path / "logs.jsonl"
    path.write_text("\n".join([
        json.dumps({"user_id": "u1", "timestamp": 5, "chosen": "A film.", "rejected": "B film.", "shop": "x"}),
        "",
        "{not json",
        json.dumps({"user_id": "u1", "chosen": "A."}),
        json.dumps({"user_id": "u2", "timestamp": "yesterday", "chosen": "A."}),
        json.dumps({"user_id": "u2", "timestamp": "2026-11-29T10:00:00Z", "chosen": "  "}),
        json.dumps(["a list"]),
        json.dumps({"user_id": 7, "timestamp": "2026-11-29T10:00:00Z", "chosen": "Tea.", "id": 3}),
    ]) + "\n")
    rows = list(read_source(str(path)))
    rejects = [r for r in rows if isinstance(r, Reject)]
    assert [(r.line, r.reason.split(":")[0]) for r in rejects] == [
        (3, "malformed JSON (Expecting property name enclosed in double quotes at column 2)"),
        (4, "field 'timestamp'"), (5, "field 'timestamp'"), (6, "field 'chosen'"),
        (7, "expected an object, found list")]
    assert all(r.source == str(path) and r.row for r in rejects)
    good = [r for r in rows if isinstance(r, ItemRow)]
    assert [(r.user_id, r.line) for r in good] == [("u1", 1), ("7", 8)]
    first = json.loads(good[0].item)
    assert first["meta"] == {"shop": "x"} and first["rejected"] == "B film."  # extra columns kept, not lost
    assert good[1].ts == datetime.fromisoformat("2026-11-29T10:00:00+00:00").timestamp()
    assert json.loads(good[1].item)["id"] == "3"


def test_parquet_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "logs.parquet"
    table = pa.table({"user_id": ["a", "b", None], "timestamp": [datetime(2026, 1, 1), datetime(2026, 1, 2), None],
                      "context": [None, "Q?", None], "chosen": ["Yes.", "No.", "Maybe."]})
    pq.write_table(table, path)
    rows = list(read_source(str(path)))
    assert isinstance(rows[0], ItemRow) and rows[0].line == 1 and rows[1].line == 2
    assert isinstance(rows[2], Reject) and rows[2].line == 3 and "user_id" in rows[2].reason
    assert json.loads(rows[0].item)["timestamp"].startswith("2026-01-01T00:00:00")


def _row(kind, payload, ts=0.0, line=0):
    return {"user_id": "u", "kind": kind, "ts": ts, "source": "s", "line": line,
            "payload": payload if isinstance(payload, str) else json.dumps(payload)}


def _items(*stamps):
    return [_row(ITEM, json.dumps({"chosen": f"item {t}."}), float(t), i) for i, t in enumerate(stamps)]


def test_plan_orders_by_time_and_reads_only_what_the_past_has_not_seen():
    past = {"profile": "Likes tea.", "covers": 3, "covered_through": 20.0, "status": "done"}
    job = plan_user(_items(30, 10, 25, 20, 40) + [_row(PAST, past)], "k", Stepping(chunk=2))
    assert [i.chosen for i in job.history] == ["item 25.", "item 30.", "item 40."]
    assert job.steps == 2 and job.action == "run" and job.covered_through == 40.0
    assert job.past_profile().profile == "Likes tea." and job.past_profile().covers == 3
    nothing_new = plan_user(_items(5, 20) + [_row(PAST, past)], "k", Stepping())
    assert nothing_new.action == "unchanged" and nothing_new.history == [] and nothing_new.covered_through == 20.0


@pytest.mark.parametrize(("segments", "stamps", "steps"), [(1, (1, 2, 3), 1), (3, (1, 2, 3, 4), 3), (3, (1, 2), 2)])
def test_plan_without_past_streams_over_segments(segments, stamps, steps):
    job = plan_user(_items(*stamps), "k", Stepping(segments=segments))
    assert job.steps == steps and len(job.history) == len(stamps) and job.past is None


def test_a_finished_input_is_resumed_and_any_change_runs_again():
    first = plan_user(_items(1, 2), "model-a", Stepping())
    done = _row(DONE, {"input_hash": first.input_hash, "status": "done"})
    assert plan_user(_items(1, 2) + [done], "model-a", Stepping()).action == "resumed"
    assert plan_user(_items(1, 2, 3) + [done], "model-a", Stepping()).action == "run"
    assert plan_user(_items(1, 2) + [done], "model-b", Stepping()).action == "run"


def test_the_public_surface_is_the_documented_list():
    from prefscribe import batch

    assert sorted(batch.__all__) == sorted(name for name in vars(batch) if not name.startswith("_")
                                           and name not in {"annotations"} and not _is_module(batch, name))


def _is_module(package, name: str) -> bool:
    import types

    return isinstance(getattr(package, name), types.ModuleType)
