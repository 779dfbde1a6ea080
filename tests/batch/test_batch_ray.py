"""The batch job on a local Ray (2 CPUs) with the tiny models and the OpenAI-compatible test server:
one row per user, the same profiles and cache keys as the single-process Inferrer, resumable after a
kill, rejects with their source and line, --past reads only newer interactions, --db writes versions as
the service's worker does, --dry-run prints the plan."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from prefscribe.batch import BatchConfig, ModelSettings, run_batch
from prefscribe.cli import app
from prefscribe.data.transforms import split_segments
from prefscribe.schema import Interaction, Profile

from ..conftest import wait_for
from .conftest import write_logs

pytestmark = pytest.mark.timeout(600)  # a hang guard only


def _keys(cache_file) -> set[str]:
    with sqlite3.connect(cache_file) as db:
        return {k for (k,) in db.execute("SELECT key FROM results")}


def _histories(path) -> dict[str, list[Interaction]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith('{"user_id"')]
    out: dict[str, list] = {}
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        if "chosen" in row:
            out.setdefault(row["user_id"], []).append(
                Interaction(context=row["context"], chosen=row["chosen"], rejected=row["rejected"],
                            timestamp=row["timestamp"]))
    return out


def _single_process(settings: ModelSettings, histories, segments, pasts=None):
    """What `prefscribe infer` writes for these users, in this process, with its own cache."""
    inferrer = settings.inferrer()
    users = sorted(histories)
    steps = inferrer.stream_many([histories[u] for u in users], segments,
                                 [pasts[u] for u in users] if pasts else None)
    return dict(zip(users, steps))


def test_every_user_gets_one_row_equal_to_the_single_process_inferrer(ray_cluster, dots_model, tmp_path,
                                                                       recwarn):
    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=5, per_user=4, bad=True)
    config = BatchConfig(interactions=[str(logs)], out=str(tmp_path / "out"), model=f"hf:{dots_model}",
                         max_new_tokens=12, segments=2, batch_size=2, cache=str(tmp_path / "batch.sqlite"))
    summary = run_batch(config)
    # Filters are Arrow expressions: Ray warns on each filter given a Python function instead.
    assert not [w for w in recwarn if "instead of 'fn'" in str(w.message)]

    table = pd.read_parquet(tmp_path / "out" / "profiles.parquet")
    assert sorted(table.user_id) == [f"u{u:02d}" for u in range(5)]  # exactly one row per user
    assert set(table.status) == {"done"} and summary.users_done == 5 and summary.users_failed == 0
    assert summary.rows_rejected == 2 and summary.rows_read == 22 and summary.interactions == 20
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["line"]) for r in rejects] == [(str(logs), 4), (str(logs), 22)]
    assert "malformed JSON" in rejects[0]["reason"] and "field 'chosen': missing" in rejects[1]["reason"]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["users_done"] == 5 and written["prompt_tokens"] == int(table.prompt_tokens.sum()) > 0

    # The single-process Inferrer, from scratch, writes the same profiles under the same cache keys.
    alone = ModelSettings(model=config.model, max_new_tokens=12, cache=str(tmp_path / "alone.sqlite"))
    expected = _single_process(alone, _histories(logs), segments=2)
    for row in table.itertuples():
        final = expected[row.user_id][-1]
        assert isinstance(final, Profile)
        assert (row.profile, row.covers, row.model, row.prompt_version) == (
            final.profile, final.covers, final.model, final.prompt_version)
        assert row.prompt_tokens == sum(s.usage.prompt_tokens for s in expected[row.user_id])
    assert _keys(tmp_path / "batch.sqlite") == _keys(tmp_path / "alone.sqlite")
    assert len(_keys(tmp_path / "alone.sqlite")) == 10  # 5 users x 2 streaming steps


def test_a_job_killed_midway_resumes_without_duplicates(ray_cluster, dots_model, tmp_path):
    """The model server answers three users' requests and holds the fourth: the job is killed while it
    waits, so exactly three users are written, on any machine. The rerun takes up the other nine."""
    from prefscribe.llm.hf import HFBackend
    from tests.openai_server import ServerThread, build_app

    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=12, per_user=2)
    out = tmp_path / "out"
    app = build_app(HFBackend.from_path(dots_model, spec="hf:dots", dtype="float32"), hold_after=3)
    held = app.state.counters
    with ServerThread(app) as url:
        model = f"openai:tiny@{url}"
        args = ["--interactions", str(logs), "--out", str(out), "--model", model, "--engine", "actors",
                "--max-new-tokens", "12", "--batch-size", "1", "--cache", ""]
        env = {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
        job = subprocess.Popen([sys.executable, "-c", "from prefscribe.cli import main; main()", "batch", *args],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: held["held"] > 0 or job.poll() is not None, 300, "the job never asked for user 4")
            assert job.poll() is None, "the job ended before it could be killed"
            os.killpg(job.pid, signal.SIGKILL)
        finally:
            job.wait()
        # Ray ends the dead job's actors; until their held requests drop, one could still write a part.
        wait_for(lambda: held["dropped"] == held["held"], 120, "the killed job's model actor lived on")
        assert not (out / "profiles.parquet").exists()
        finished = len(list((out / "parts").glob("part-*.parquet")))
        assert finished == 3 and held["requests"] == 4

        app.state.release.set()
        config = BatchConfig(interactions=[str(logs)], out=str(out), model=model, engine="actors",
                             max_new_tokens=12, batch_size=4, cache="")
        summary = run_batch(config)
        table = pd.read_parquet(out / "profiles.parquet")
        assert sorted(table.user_id) == [f"u{u:02d}" for u in range(12)] and set(table.status) == {"done"}
        assert (summary.users_resumed, summary.users_done) == (3, 9) and held["requests"] == 4 + 9
        again = run_batch(config)  # a third run has nothing left to do
        assert (again.users_resumed, again.users_done) == (12, 0) and held["requests"] == 13
        assert len(pd.read_parquet(out / "profiles.parquet")) == 12


def test_past_updates_read_only_newer_interactions(ray_cluster, dots_model, tmp_path):
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    write_logs(old, users=3, per_user=2, start=1000.0)
    write_logs(new, users=4, per_user=5, start=1005.0)  # overlaps the old coverage: only newer rows count
    common = {"model": f"hf:{dots_model}", "max_new_tokens": 12, "cache": str(tmp_path / "batch.sqlite")}
    run_batch(BatchConfig(interactions=[str(old)], out=str(tmp_path / "night1"), **common))
    summary = run_batch(BatchConfig(interactions=[str(new)], out=str(tmp_path / "night2"),
                                    past=str(tmp_path / "night1"), chunk=2, **common))
    night1 = pd.read_parquet(tmp_path / "night1" / "profiles.parquet").set_index("user_id")
    night2 = pd.read_parquet(tmp_path / "night2" / "profiles.parquet").set_index("user_id")
    assert list(night2.index) == ["u00", "u01", "u02", "u03"] and set(night2.status) == {"done"}

    histories = _histories(new)
    alone = ModelSettings(model=common["model"], max_new_tokens=12, cache=str(tmp_path / "alone.sqlite"))
    inferrer = alone.inferrer()
    for user, history in histories.items():
        past = None
        newer = history
        if user in night1.index:
            watermark = night1.loc[user, "covered_through"]
            newer = [i for i in history if i.timestamp > watermark]
            past = Profile(profile=night1.loc[user, "profile"], covers=int(night1.loc[user, "covers"]),
                           model=night1.loc[user, "model"], prompt_version=night1.loc[user, "prompt_version"])
            assert len(newer) < len(history)
        steps = split_segments(newer, -(-len(newer) // 2)) if past else [newer]
        current = past
        for chunk in steps:  # what `infer --past` does, once per chunk of at most 2
            current = inferrer.run([_job(chunk, current)])[0]
        assert night2.loc[user, "covers"] == current.covers == (night1.loc[user, "covers"] if past else 0) + len(newer)
        assert night2.loc[user, "covered_through"] == max(i.timestamp for i in history)
    assert _keys(tmp_path / "alone.sqlite") <= _keys(tmp_path / "batch.sqlite")
    assert summary.interactions == sum(1 for h in histories.values() for _ in h) - 3 * 2 + 3  # 3 rows were old


def _job(history, past):
    from prefscribe.infer import InferJob

    return InferJob(history, past)


@pytest.fixture(scope="module")
def dots_server(dots_model):
    from prefscribe.llm.hf import HFBackend
    from tests.openai_server import ServerThread, build_app

    backend = HFBackend.from_path(dots_model, spec="hf:dots", dtype="float32")
    app = build_app(backend, fail_first=2)  # two 503s: the HTTP stage retries them
    with ServerThread(app) as url:
        yield url, app


@pytest.mark.parametrize("engine", ["http", "actors"])
def test_a_server_model_through_ray_data_llm_or_actors_matches_the_inferrer(ray_cluster, dots_server, engine,
                                                                           tmp_path):
    url, _ = dots_server
    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=4, per_user=3)
    config = BatchConfig(interactions=[str(logs)], out=str(tmp_path / "out"), model=f"openai:tiny@{url}",
                         max_new_tokens=10, segments=2, engine=engine, qps=50, max_retries=3,
                         cache=str(tmp_path / "batch.sqlite"))
    summary = run_batch(config)
    table = pd.read_parquet(tmp_path / "out" / "profiles.parquet")
    assert sorted(table.user_id) == ["u00", "u01", "u02", "u03"] and summary.users_done == 4

    alone = ModelSettings(model=config.model, max_new_tokens=10, cache=str(tmp_path / "alone.sqlite"))
    expected = _single_process(alone, _histories(logs), segments=2)
    for row in table.itertuples():
        final = expected[row.user_id][-1]
        assert (row.status, row.profile, row.covers) == ("done", final.profile, final.covers)
        assert row.completion_tokens == sum(s.usage.completion_tokens for s in expected[row.user_id])
    assert _keys(tmp_path / "batch.sqlite") == _keys(tmp_path / "alone.sqlite")


def test_unparseable_replies_are_failed_rows_never_profiles(ray_cluster, tiny_backend, tmp_path):
    from tests.openai_server import ServerThread, build_app

    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=2, per_user=2)
    with ServerThread(build_app(tiny_backend)) as url:  # a random model: no sentence ends, no profile
        summary = run_batch(BatchConfig(interactions=[str(logs)], out=str(tmp_path / "out"),
                                        model=f"openai:tiny@{url}", max_new_tokens=6, cache=""))
    table = pd.read_parquet(tmp_path / "out" / "profiles.parquet")
    assert list(table.status) == ["failed", "failed"] and table.profile.isna().all()
    assert table.error.str.contains("step 1 of 1: summary cut off").all() and summary.users_failed == 2


def test_db_writes_profile_versions_as_the_service_worker_does(ray_cluster, dots_model, tmp_path):
    from prefscribe.llm.hf import torch_engine
    from prefscribe.store import Store

    url = f"sqlite:///{tmp_path / 'service.db'}"
    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=3, per_user=3, bad=True)
    config = BatchConfig(interactions=[str(logs)], db=url, tenant="acme", out=str(tmp_path / "out"),
                         model=f"hf:{dots_model}", max_new_tokens=12, chunk=2, cache="")
    summary = run_batch(config)
    assert (summary.interactions, summary.rows_rejected, summary.users_failed) == (9, 2, 0)

    store = Store(url)
    tenant = store.tenant("acme")
    for user in ("u00", "u01", "u02"):
        state, head = store.head(tenant.id, user)
        # chunk=2: the worker's streaming updates take 2 then 1 interaction, each a version by the model.
        assert (state.interactions, state.covered_through, state.pending) == (3, 3, 0)
        model = f"{config.model}+{torch_engine()}"  # the model with its engine, as the worker's backend names it
        assert [(v.author, v.kind, v.editor, v.first_seq, v.last_seq) for v in
                reversed(store.versions(tenant.id, user))] == [
            ("model", "update", model, 1, 2), ("model", "update", model, 3, 3)]
        assert head.covers == 3 and head.usage["prompt_tokens"] > 0
    again = run_batch(config)  # the same files again: nothing new to ingest, nobody due
    assert (again.interactions, again.users_done) == (0, 0)
    assert len(store.versions(tenant.id, "u00")) == 2


def test_dry_run_prints_the_plan_and_writes_nothing(ray_cluster, tmp_path):
    logs = tmp_path / "logs.jsonl"
    write_logs(logs, users=3, per_user=4, bad=True)
    result = CliRunner().invoke(app, ["batch", "--interactions", str(logs), "--out", str(tmp_path / "out"),
                                      "--model", "openai:m@http://127.0.0.1:9/v1", "--segments", "2",
                                      "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["users"] == 3 and plan["users_run"] == 3 and plan["rows_rejected"] == 2
    assert plan["interactions"] == 12 and plan["model_calls"] == 6 and plan["est_prompt_tokens"] > 12 * 10
    assert not (tmp_path / "out").exists()
