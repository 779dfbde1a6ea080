"""End to end on the real embedded default model (Qwen2.5-Coder-1.5B-Instruct), through the CLI a user runs."""

import json
from importlib.resources import files

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app

pytestmark = pytest.mark.embedded
runner = CliRunner()


def test_infer_stream_update_and_choose_on_the_default_model(tmp_path):
    lines = (files("prefscribe") / "examples" / "maya.jsonl").read_text("utf-8").splitlines()
    early, new = tmp_path / "early.jsonl", tmp_path / "new.jsonl"
    early.write_text("\n".join(lines[:4]) + "\n")
    new.write_text("\n".join(lines[4:]) + "\n")

    first = runner.invoke(app, ["infer", str(early), "--json"])
    assert first.exit_code == 0, first.output
    profile = json.loads(first.stdout)
    assert profile["model"] == "embedded:1.5b+torch" and profile["covers"] == 4
    assert len(profile["profile"].split()) >= 8 and profile["usage"]["completion_tokens"] > 0
    (tmp_path / "p1.json").write_text(first.stdout)

    update = runner.invoke(app, ["infer", str(new), "--past", str(tmp_path / "p1.json"), "--json"])
    assert update.exit_code == 0, update.output
    updated = json.loads(update.stdout)
    assert updated["covers"] == 6 and updated["profile"]
    assert updated["usage"]["prompt_tokens"] < 2 * profile["usage"]["prompt_tokens"]
    (tmp_path / "p2.json").write_text(update.stdout)

    target = json.loads((files("prefscribe") / "examples" / "targets.json").read_text("utf-8"))["maya"]
    choice = runner.invoke(app, ["choose", "--profile", str(tmp_path / "p2.json"), "--context", target["context"],
                                 "--a", target["chosen"], "--b", target["rejected"], "--json"])
    assert choice.exit_code == 0, choice.output
    data = json.loads(choice.stdout)
    assert data["p_a"] + data["p_b"] == pytest.approx(1.0) and [o["order"] for o in data["orders"]] == ["ab", "ba"]
    assert data["choice"] in ("a", "b") and all(0 < o["p_first"] < 1 for o in data["orders"])


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="CTranslate2 int8 misses the issue's 0.03 agreement bar on real judge prompts "
                   "(0.042 on one of these; a decision near 0.5 flips): the reason ct2 is opt-in, not the default")
def test_the_int8_engine_agrees_with_the_torch_path_within_the_bar_for_a_default_engine():
    """The opt-in engine (CTranslate2, int8) against the default (transformers bf16) on the same P-Soups judge
    prompts, both orders, gold personas as profiles: the bar a default engine must meet is two-way probabilities
    within 0.03 (issue 11). Both engines are deterministic, so this fails the same way every run; if an engine
    change makes it pass, the strict xfail says so and ct2 can be reconsidered (bench_engines.py, 60 tasks)."""
    from prefscribe.data import load
    from prefscribe.judge import ChoiceTask, Judge
    from prefscribe.llm import load_backend

    from .conftest import DATA

    users = load("psoups", DATA / "psoups" / "student_phd.json", limit=4, seed=0)
    tasks = [ChoiceTask(a=u.target.chosen, b=u.target.rejected, context=u.target.context,
                        preference=u.gold_preference) for u in users]
    int8 = Judge(load_backend("embedded:1.5b+ct2")).choose_many(tasks)
    bf16 = Judge(load_backend("embedded:1.5b+torch")).choose_many(tasks)
    diffs = [abs(a.p_first - b.p_first) for fast, slow in zip(int8, bf16) for a, b in zip(fast.orders, slow.orders)]
    assert len(diffs) == 8 and max(diffs) < 0.03, diffs
