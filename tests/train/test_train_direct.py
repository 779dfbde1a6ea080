"""The direct predictor trains on a tiny model, and its checkpoint scores pairs through the core Judge."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")

from prefscribe.judge import ChoiceTask, Judge
from prefscribe.llm import load_backend
from prefscribe.llm.hf import HFBackend
from prefscribe.prompts import JUDGE_OPTIONS, JUDGE_PREFILL, get_prompts
from prefscribe.schema import Target, UserRecord
from prefscribe.train import load_config, train_direct
from prefscribe.train.logs import read_log

from .conftest import history


def test_direct_predictor_trains_and_loads_as_a_judge(tiny_model_dir, tmp_path):
    users = [UserRecord(user_id=f"u{i}", history=history(3),
                        target=Target(context="Which?", chosen=f"A science answer {i}.", rejected="A cooking answer."))
             for i in range(3)]
    out = tmp_path / "direct"
    config = load_config("direct", None, [
        f"model={tiny_model_dir}", f"output_dir={out}", "data=[]", "points=all", "min_history=1",
        "max_history_tokens=200", "max_length=512", "learning_rate=1e-2", "lr_scheduler_type=constant",
        "warmup_ratio=0", "per_device_train_batch_size=6", "max_steps=6", "save_steps=100"])
    final = train_direct(config, users)
    losses = [row["loss"] for row in read_log(out / "train_log.jsonl") if "loss" in row]
    assert len(losses) == 6 and losses[-1] < losses[0] - 1

    # `--strong hf:<final>` / `--model hf:<final> --settings raw`: the spec loads it, the Judge scores with it.
    tuned = load_backend(f"hf:{final}")
    base = HFBackend.from_path(tiny_model_dir, dtype="float32")
    prompts = get_prompts()
    task = users[0].target
    messages = prompts.direct_messages(users[0].history, task.context, task.chosen, task.rejected, 200,
                                       tuned.count_tokens)

    def letter_mass(backend):  # probability the model gives to answering A or B after the judge prefill
        la, lb = backend.option_logprobs([messages], JUDGE_PREFILL, JUDGE_OPTIONS)[0].logprobs
        return math.exp(la) + math.exp(lb)

    assert letter_mass(tuned) > max(0.05, 5 * letter_mass(base))  # it learned to answer with a letter
    rendered = prompts.render_history(users[0].history, 200, tuned.count_tokens).text.strip()
    choice = Judge(tuned).choose(ChoiceTask(a=task.chosen, b=task.rejected, context=task.context,
                                            preference=rendered, preference_kind="history"))
    assert choice.error is None and 0.0 < choice.p_a < 1.0 and len(choice.orders) == 2
