"""Configs (YAML + overrides), RL records, the prompts training sees, and the direct predictor's data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from prefscribe.errors import InputError
from prefscribe.infer import InferConfig, InferJob, Inferrer
from prefscribe.llm.base import Sampling
from prefscribe.prompts import get_prompts
from prefscribe.schema import Interaction, Profile, Target, UserRecord
from prefscribe.train import RLTrainConfig, load_config
from prefscribe.train.config import parse_override
from prefscribe.train.direct import answer_text, examples_of, points_of
from prefscribe.train.records import PromptBuilder, RLRecord, read_rl_records
from prefscribe.train.sft import read_chat_records

from ..conftest import FakeBackend
from .conftest import history

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize("stage", ["sft", "direct", "rl"])
def test_presets_load(stage):
    config = load_config(stage, REPO / "configs" / f"{stage}.yaml")
    assert config.output_dir == f"runs/{stage}"


def test_paper_presets_hold_the_paper_numbers():
    sft = load_config("sft", REPO / "configs" / "sft.yaml")
    assert (sft.learning_rate, sft.lr_scheduler_type, sft.warmup_ratio, sft.num_train_epochs, sft.max_length) == \
        (2e-5, "cosine", 0.1, 4, 16384)
    rl = load_config("rl", REPO / "configs" / "rl.yaml")
    assert (rl.num_generations, rl.learning_rate, rl.max_prompt_length, rl.max_completion_length, rl.cumulative) == \
        (4, 1e-6, 8192, 4096, "paper")


OVERRIDES = [
    ("learning_rate=1e-5", ["learning_rate"], 1e-5),
    ("lora.enabled=true", ["lora", "enabled"], True),
    ("judge=openai:m@http://h:1/v1", ["judge"], "openai:m@http://h:1/v1"),
    ("lora.target_modules=[q_proj, v_proj]", ["lora", "target_modules"], ["q_proj", "v_proj"]),
    ("resume_from_checkpoint=null", ["resume_from_checkpoint"], None),
]


@pytest.mark.parametrize("text,path,value", OVERRIDES)
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text("model: m\noutput_dir: o\ntrain_file: t.jsonl\ngamma: 0.3\nlora:\n  r: 4\n")
    config = load_config("rl", path, ["gamma=0.5", "lora.enabled=true", "num_generations=2",
                                      "per_device_train_batch_size=4"])
    assert isinstance(config, RLTrainConfig)
    assert (config.gamma, config.lora.enabled, config.lora.r, config.num_generations) == (0.5, True, 4, 2)


@pytest.mark.parametrize("overrides,field", [
    (["learnig_rate=1"], "learnig_rate"),                # a typo is refused, not ignored
    (["gamma=2"], None),                                 # gamma outside [0, 1]
    (["num_generations=3"], None),                       # 2G = 6 does not divide 4 sequences per device
    (["cumulative=flat"], "cumulative"),
])
def test_bad_configs_name_the_problem(overrides, field):
    base = ["model=m", "output_dir=o", "train_file=t.jsonl", "per_device_train_batch_size=4", "num_generations=2"]
    with pytest.raises(InputError) as err:
        load_config("rl", None, base + overrides)
    if field:
        assert err.value.field == field


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config("sft", tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------- RL records
def test_rl_record_targets_and_segments():
    record = RLRecord(user_id="u", history=history(6), k=2, K=5)
    assert [h.chosen for h in record.stage1_history] == ["A science answer 0.", "A science answer 1."]
    assert [h.chosen for h in record.stage2_history] == [f"A science answer {i}." for i in (2, 3, 4)]
    assert record.target(1).chosen == "A science answer 2." and record.target(2).chosen == "A science answer 5."


@pytest.mark.parametrize("k,K,drop,message", [
    (0, 3, None, "0 < k < K"), (3, 3, None, "0 < k < K"), (2, 5, None, "0 < k < K"),
    (2, 4, 2, "history\\[k=2\\] has no rejected"), (1, 4, 4, "history\\[K=4\\] has no rejected"),
])
def test_rl_record_validation(tmp_path, k, K, drop, message):
    items = [h.model_dump(exclude_none=True) for h in history(5)]
    if drop is not None:
        del items[drop]["rejected"]
    path = tmp_path / "rl.jsonl"
    good = {"user_id": "ok", "history": [h.model_dump(exclude_none=True) for h in history(5)], "k": 1, "K": 3}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"user_id": "u", "history": items, "k": k, "K": K}) + "\n")
    with pytest.raises(InputError, match=message) as err:
        read_rl_records(path)
    assert err.value.line == 2


def test_read_rl_records(tmp_path):
    path = tmp_path / "rl.jsonl"
    rows = [{"user_id": f"u{i}", "history": [h.model_dump(exclude_none=True) for h in history(5)], "k": 2, "K": 4}
            for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    records = read_rl_records(path)
    assert [r.user_id for r in records] == ["u0", "u1", "u2"] and records[0].K == 4


def test_chat_records_are_validated(tmp_path):
    path = tmp_path / "sft.jsonl"
    good = {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "x"}],
            "meta": {"user": 1}}
    bad = {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "user", "content": "x"}]}
    path.write_text(json.dumps(good) + "\n")
    assert read_chat_records(path) == [{"prompt": good["prompt"], "completion": good["completion"]}]
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError) as err:
        read_chat_records(path)
    assert err.value.line == 2 and err.value.field == "completion"


# ------------------------------------------------------------------------------ prompts training sees
def test_training_prompts_are_the_inference_prompts():
    """The RL prompt of (history, past) is the one the core Inferrer sends for the same input and budget."""
    prompts = get_prompts()
    count = lambda text: len(text.split())
    builder = PromptBuilder(prompts, count, max_prompt_tokens=400, max_completion_tokens=100)
    backend = FakeBackend(context_window=400 + 100 + 32, thinks=True)
    inferrer = Inferrer(backend, InferConfig(style="reasoning", sampling=Sampling(max_new_tokens=100), prompts=prompts))
    long_history = history(40)
    for past in (None, "The user likes science."):
        expected = inferrer.plan(InferJob(long_history, Profile(profile=past) if past else None)).messages
        got = builder(long_history, past)
        assert got == expected
        assert "earlier interactions omitted" in got[-1]["content"]  # the budget cut the oldest ones
    assert "The user likes science." in builder(history(2), "The user likes science.")[-1]["content"]
    assert "Not Provided." in builder(history(2), None)[-1]["content"]


# ---------------------------------------------------------------------------------- direct predictor data
def test_points_of_a_user():
    items = history(4)
    items[1] = Interaction(context="q", chosen="liked only")  # positive-only: not a training point
    user = UserRecord(user_id="u", history=items, target=Target(context="t", chosen="c", rejected="r"))
    points = points_of(user, "all", min_history=1)
    assert [len(p.history) for p in points] == [2, 3, 4]           # h_2, h_3, then the held-out target
    assert points[-1].target.chosen == "c"
    assert [len(p.history) for p in points_of(user, "target")] == [4]
    assert [len(p.history) for p in points_of(user, "all", min_history=1, max_points=2)] == [3, 4]


@pytest.mark.parametrize("orders,n_points,expected_rows", [("both", 5, 10), ("alternate", 5, 5), ("alternate", 4, 4)])
def test_direct_examples_are_balanced(orders, n_points, expected_rows):
    user = UserRecord(user_id="u", history=history(n_points + 1))
    points = points_of(user, "all", min_history=1)[:n_points]
    rows = examples_of(points, orders, get_prompts(), 500, lambda t: len(t.split()))
    answers = Counter(row["completion"][0]["content"] for row in rows)
    assert len(rows) == expected_rows
    assert abs(answers[answer_text("A")] - answers[answer_text("B")]) <= 1
    for row in rows:  # the true (science) item sits where the answer says
        content = row["prompt"][-1]["content"]
        letter = "A" if row["completion"][0]["content"] == answer_text("A") else "B"
        shown = content.split(f"## Item {letter}\n")[1].split("\n")[0]
        assert "science" in shown


def test_answer_text_is_the_judge_json():
    assert answer_text("A") == '{"selection": "Item A"}' and answer_text("B") == '{"selection": "Item B"}'
    assert json.loads(answer_text("B")) == {"selection": "Item B"}


def test_the_lazy_trainers_resolve():
    """The exact names are pinned in tests/test_surface.py; these import TRL on first use."""
    pytest.importorskip("trl")
    from prefscribe import train

    assert sorted(train.__all__) == train.__all__
    for name in ("train_sft", "train_direct", "train_rl", "plot_training"):
        value = getattr(train, name)
        assert callable(value) and value.__module__ == f"prefscribe.train.{train._LAZY[name][1:]}", name


def test_cli_plots_a_log(tmp_path):
    from typer.testing import CliRunner

    from prefscribe.cli import app
    from prefscribe.train.logs import series

    log = tmp_path / "train_log.jsonl"
    rows = [{"step": s, "stage1/reward": 0.5 + s / 10, "stage2/reward": 0.4, "stage1/cumulative_reward": 0.9,
             "stage1/length": 60, "stage2/length": 50, "stage1/format_failures": 0.25, "stage2/format_failures": 0,
             "clip_ratio/region_mean": 0.01, "loss": 0.1} for s in (1, 2, 3)]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert series(rows, "stage1/reward") == ([1, 2, 3], [0.6, 0.7, 0.8])
    result = CliRunner().invoke(app, ["train", "plot", str(log), "--out", str(tmp_path / "fig.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    missing = CliRunner().invoke(app, ["train", "plot", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "training log here" in " ".join(missing.output.split())
