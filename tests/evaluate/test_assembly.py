"""One assembly for every evaluation: several judge methods on the same users in one run, and writers plugged in
by name (what `prefscribe eval` and bench/bench_quality.py both build)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app
from prefscribe.errors import InputError
from prefscribe.evaluate import WRITERS, Dataset, EvalSpec, ProfileWriter, WriterParts, assemble, parse_methods
from prefscribe.infer import InferJob
from prefscribe.schema import Profile

from ..conftest import DATA

runner = CliRunner()
needs_data = pytest.mark.skipif(not (DATA / "psoups").exists(), reason="needs ../shared/data (set PREFSCRIBE_DATA)")
PSOUPS = str(DATA / "psoups/student_phd.json")


def items_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


@needs_data
def test_one_run_compares_gold_with_another_gold_under_each_method(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", PSOUPS, "--limit", "4",
                                 "--settings", "none,generic,gold,gold_mismatched,full,mismatched",
                                 "--method", "logprobs,contrast,likelihood", "--model", f"hf:{tiny_model_dir}",
                                 "--max-new-tokens", "8", "--style", "direct", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["variant"], r["n"]) for r in summary["results"]} == {("", 4), ("method=contrast", 4),
                                                                     ("method=likelihood", 4)}
    reads = {(m["method"], m["a"], m["b"]): m for m in summary["judge_methods"]}
    for method in ("logprobs", "contrast", "likelihood"):
        row = reads[(method, "gold", "gold_mismatched")]
        assert row["n"] == 4 and row["ci_low"] <= row["diff"] <= row["ci_high"]
        assert (method, "full", "mismatched") in reads and (method, "gold", "none") in reads
    items = items_of(out)
    assert {i["method"] for i in items} == {"logprobs", "contrast", "likelihood"}
    # Each method judged the same users, and the profiles were written once and read by every method.
    for setting in ("gold", "full"):
        users = {m: {i["user_id"] for i in items if i["setting"] == setting and i["method"] == m}
                 for m in ("logprobs", "contrast", "likelihood")}
        assert users["logprobs"] == users["contrast"] == users["likelihood"] and len(users["logprobs"]) == 4
    full = {}
    for item in (i for i in items if i["setting"] == "full"):
        assert full.setdefault(item["user_id"], item["preference"]) == item["preference"]
    # The generic text gains nothing over itself under contrast: a tie on every item, never a free "correct".
    generic = [i for i in items if i["setting"] == "generic" and i["method"] == "contrast"]
    assert all(i["failed"] and not i["correct"] and i["p_true"] == pytest.approx(0.5) for i in generic)
    for name in ("table.md", "report.md"):
        text = (out / name).read_text()
        assert "Judge methods" in text and "| logprobs | contrast | likelihood |" in text
        assert "gold - gold_mismatched" in text


class LastChoiceWriter:
    """A writer with no model: the profile names the last item the user chose (the streaming form updates it)."""

    writer = "last-choice"

    def run(self, jobs: Sequence[InferJob], progress=None) -> list[Profile]:
        out = [Profile(profile=f"The user last chose: {job.history[-1].chosen}", covers=len(job.history)
                       + (job.past.covers if job.past else 0)) for job in jobs]
        if progress:
            progress(len(jobs))
        return out

    def stream_many(self, histories, segments, pasts=None, progress=None) -> list[list[Profile]]:
        return [self.run([InferJob(h)], progress) for h in histories]


def last_choice(parts: WriterParts) -> ProfileWriter:
    return LastChoiceWriter()


@needs_data
def test_a_writer_is_one_registry_entry_away(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(WRITERS, "last-choice", last_choice)
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", PSOUPS, "--limit", "4", "--settings",
                                 "none,full,mismatched", "--writer", "last-choice", "--model", f"hf:{tiny_model_dir}",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["writer"] == "last-choice" and {r["model"] for r in summary["results"]} == {"last-choice"}
    from prefscribe.data import load
    users = {u.user_id: u for u in load("psoups", PSOUPS, limit=4)}
    for item in (i for i in items_of(out) if i["setting"] == "full"):
        assert item["preference"] == f"The user last chose: {users[item['user_id']].history[-1].chosen}"


@needs_data
def test_assemble_runs_a_dataset_with_a_writer_factory(tiny_model_dir, tmp_path):
    from prefscribe.data import load
    plan = assemble(EvalSpec(model=f"hf:{tiny_model_dir}", writer=last_choice, methods=("contrast",), seed=1))
    assert isinstance(plan.writer, ProfileWriter) and list(plan.judges) == ["contrast"]
    users = load("psoups", PSOUPS, limit=4, seed=1)
    rows = plan.run(Dataset("psoups", "", users), ["none", "full"], tmp_path / "run")
    assert {(r["setting"], r["variant"], r["n"]) for r in rows} == {("none", "method=contrast", 4),
                                                                      ("full", "method=contrast", 4)}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["run"]["writer"] == "last_choice" and summary["run"]["method"] == "contrast"
    assert summary["run"]["seed"] == 1


@pytest.mark.parametrize("text,expected", [
    ("logprobs", ["logprobs"]),
    ("contrast, likelihood,contrast", ["contrast", "likelihood"]),
])
def test_parse_methods(text, expected):
    assert parse_methods(text) == expected


@pytest.mark.parametrize("text", ["", "letters", "logprobs,coin"])
def test_parse_methods_rejects_unknown(text):
    with pytest.raises(InputError) as err:
        parse_methods(text)
    assert err.value.field == "method"


@needs_data
def test_unknown_writer_names_the_known_ones(tmp_path):
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", PSOUPS, "--limit", "2", "--settings",
                                 "none", "--writer", "telepathic", "--model", "hf:/nowhere", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown writer 'telepathic'" in result.output and "free" in result.output


@needs_data
def test_every_method_reads_the_profiles_the_first_one_wrote(tiny_model_dir, tmp_path):
    from prefscribe.data import load
    written = LastChoiceWriter()
    calls = []
    original = written.run
    written.run = lambda jobs, progress=None: calls.extend(jobs) or original(jobs, progress)
    plan = assemble(EvalSpec(model=f"hf:{tiny_model_dir}", writer=lambda parts: written,
                             methods=("logprobs", "contrast", "likelihood"), cache=False))
    users = load("psoups", PSOUPS, limit=4)
    plan.run(Dataset("psoups", "", users), ["full", "mismatched"], tmp_path / "run")
    assert len(calls) == 4  # one profile per user, not one per user and method
    assert {(i["method"], i["setting"]) for i in items_of(tmp_path / "run")} == {
        (m, s) for m in ("logprobs", "contrast", "likelihood") for s in ("full", "mismatched")}
