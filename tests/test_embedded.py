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
    # The engine this CPU runs by default (bf16 torch where bf16 is native, float32 torch elsewhere) is named.
    from prefscribe.llm.embedded import default_engine

    assert profile["model"] == f"embedded:1.5b+{default_engine()}" and profile["covers"] == 4
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


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the quantized engines miss the 0.03 agreement bar "
                   "on real judge prompts (a decision near 0.5 flips): the reason neither is the default")
@pytest.mark.parametrize("engine", ["ct2", "ort"])
def test_a_quantized_engine_agrees_with_the_torch_path_within_the_bar_for_a_default_engine(engine):
    """The opt-in engines (CTranslate2 int8, ONNX Runtime GenAI int4) against the torch path this CPU runs by
    default (bf16 where native, float32 elsewhere) on the same P-Soups judge prompts, both orders, gold personas
    as profiles. The bar a default engine must meet is two-way probabilities within 0.03 (issue 11); both miss
    it, which is why neither is the default (bench_engines.py: ct2 up to 0.064 on 200 tasks against bf16, ort
    up to 0.155 on 20 against float32). Both are deterministic: if an engine change brings one within the bar,
    the strict xfail says so and the engine can be reconsidered as a default."""
    from prefscribe.data import load
    from prefscribe.judge import ChoiceTask, Judge
    from prefscribe.llm import load_backend
    from prefscribe.llm.embedded import default_engine

    from .conftest import DATA

    users = load("psoups", DATA / "psoups" / "student_phd.json", limit=4, seed=0)
    tasks = [ChoiceTask(a=u.target.chosen, b=u.target.rejected, context=u.target.context,
                        preference=u.gold_preference) for u in users]
    quantized = Judge(load_backend(f"embedded:1.5b+{engine}")).choose_many(tasks)
    reference = Judge(load_backend(f"embedded:1.5b+{default_engine()}")).choose_many(tasks)
    diffs = [abs(a.p_first - b.p_first) for q, r in zip(quantized, reference) for a, b in zip(q.orders, r.orders)]
    assert len(diffs) == 8 and max(diffs) < 0.03, diffs
