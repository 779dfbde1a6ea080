"""Streaming GRPO on a tiny random policy: one real step end to end with a tiny judge, and scripted steps
whose rewards, advantages and update are checked against hand-computed values."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")

import torch

from prefscribe.judge import ChoiceTask, Judge
from prefscribe.train import load_config
from prefscribe.train.logs import plot_training, read_log
from prefscribe.train.records import RLRecord
from prefscribe.train.rl import build_trainer

from .conftest import history, keyword_judge

SCIENCE = "<think>They chose science each time.</think>The user likes science."
COOKING = "<think>They chose cooking each time.</think>The user likes cooking."


def rl_config(tiny_model_dir, out, *extra):
    return load_config("rl", None, [
        f"model={tiny_model_dir}", f"output_dir={out}", "train_file=unused.jsonl", "judge=unused",
        "num_generations=2", "per_device_train_batch_size=4", "max_steps=1", "save_steps=100", "save_final=false",
        "max_prompt_length=1024", "max_completion_length=12", "learning_rate=1e-3", "gamma=0.5", *extra])


def records(n=2):
    return [RLRecord(user_id=f"u{i}", history=history(5), k=2, K=4) for i in range(n)]


def script(trainer, replies):
    """Replace sampling by fixed replies: row j of each group of G gets replies[j]; records every prompt."""
    tokenizer = trainer.processing_class
    seen = []

    def generate(prompt_ids, images, multimodal, num_generations):
        texts = tokenizer.batch_decode(prompt_ids)
        seen.extend(texts)
        ids = [tokenizer(replies[i % len(replies)], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
               for i in range(len(texts))]
        return ids, None

    trainer._generate_single_turn = generate
    return seen


def capture(trainer):
    """Keep what the rollout produced (before TRL shuffles it into optimizer slices)."""
    original, out = trainer._generate_and_score_completions, {}

    def spy(inputs):
        result = original(inputs)
        out.update(result)
        return result

    trainer._generate_and_score_completions = spy
    return out


def sequence_logprob(model, prompt_ids, completion_ids) -> float:
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1: -1].float()
    return torch.log_softmax(logits, -1)[torch.arange(len(completion_ids)), torch.tensor(completion_ids)].sum().item()


def test_one_real_rl_step_end_to_end(tiny_model_dir, tiny_backend, tmp_path):
    """Real sampling from the random policy, the tiny model as judge: every reply fails the format gate, so
    rewards and advantages are 0 and stage 2 starts from no past summary; the step and its log still run."""
    out = tmp_path / "rl"
    trainer = build_trainer(rl_config(tiny_model_dir, out), records(), judge=Judge(tiny_backend))
    sampled = []
    original = trainer._sample
    trainer._sample = lambda conversations: sampled.append(conversations) or original(conversations)
    rollout = capture(trainer)
    trainer.train()
    stage1, stage2 = sampled
    assert len(stage1) == len(stage2) == 2 and stage1[0] == stage1[1]
    assert "Not Provided." in stage2[0][-1]["content"] and "A science answer 2." in stage2[0][-1]["content"]
    assert rollout["completion_ids"].shape[0] == 4 and torch.all(rollout["advantages"] == 0)
    row = next(r for r in read_log(out / "train_log.jsonl") if "stage1/reward" in r)
    assert row["stage1/format_failures"] == 1.0 and row["stage2/format_failures"] == 1.0
    assert row["stage1/reward"] == row["stage2/reward"] == row["stage1/cumulative_reward"] == 0.0
    assert 0 < row["stage1/length"] <= 12 and "clip_ratio/region_mean" in row and row["loss"] == 0.0
    png = plot_training(out / "train_log.jsonl")
    assert png.stat().st_size > 10_000


def test_scripted_step_rewards_match_the_tiny_judge(tiny_model_dir, tiny_backend, tmp_path):
    """Rewards from the tiny judge equal the core Judge's probability of the true item for each summary;
    stage-1 rewards add gamma x the stage-2 mean; advantages are normalized per stage group."""
    judge = Judge(tiny_backend)
    trainer = build_trainer(rl_config(tiny_model_dir, tmp_path / "rl"), records(), judge=judge)
    prompts = script(trainer, [SCIENCE, COOKING])
    rollout = capture(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    record = records()[0]
    expected_r = []
    for stage in (1, 2):
        target = record.target(stage)
        for summary in ("The user likes science.", "The user likes cooking."):
            choice = judge.choose(ChoiceTask(a=target.chosen, b=target.rejected, context=target.context,
                                             preference=summary))
            expected_r.append(choice.p_a)
    last = trainer.reward_funcs[0].last
    assert last.immediate == pytest.approx(expected_r)
    mean2 = (expected_r[2] + expected_r[3]) / 2
    assert last.cumulative == pytest.approx([expected_r[0] + 0.5 * mean2, expected_r[1] + 0.5 * mean2,
                                             expected_r[2], expected_r[3]])
    def normalized(x, y):  # a group of two: mean (x + y) / 2, Bessel std |x - y| / sqrt(2), TRL's eps 1e-4
        half, std = (x - y) / 2, abs(x - y) / 2 ** 0.5
        return [half / (std + 1e-4), -half / (std + 1e-4)]

    # (the tiny judge's rewards differ by ~1e-5: float32 rounding allows a little slack)
    assert rollout["advantages"].tolist() == pytest.approx(normalized(*last.cumulative[:2])
                                                           + normalized(*last.cumulative[2:]), abs=1e-3)
    # Stage 1 saw H[0:k]; stage 2 saw the picked summary and H[k:K] only.
    stage1, stage2 = prompts[0], prompts[2]
    assert "A science answer 1." in stage1 and "A science answer 2." not in stage1
    assert "A science answer 2." in stage2 and "A science answer 3." in stage2
    assert "A science answer 1." not in stage2 and "A science answer 4." not in stage2
    assert ("The user likes science." in stage2) != ("The user likes cooking." in stage2)
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_an_rl_step_raises_the_probability_of_the_rewarded_summary(tiny_model_dir, tmp_path, variant):
    """Toy check: the judge rewards the science summary (0.9) over the cooking one (0.1); after one step the
    policy gives the science reply more probability and the cooking reply less."""
    trainer = build_trainer(rl_config(tiny_model_dir, tmp_path / "rl", f"cumulative={variant}"), records(),
                            judge=Judge(keyword_judge(0.9)))
    script(trainer, [SCIENCE, COOKING])
    rollout = capture(trainer)
    tokenizer = trainer.processing_class
    prompt_ids = trainer._tokenize_prompts([trainer.train_dataset[0]["prompt"]])[0][0]
    replies = {name: tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
               for name, text in (("science", SCIENCE), ("cooking", COOKING))}
    before = {k: sequence_logprob(trainer.model, prompt_ids, v) for k, v in replies.items()}
    trainer.train()
    after = {k: sequence_logprob(trainer.model, prompt_ids, v) for k, v in replies.items()}
    r = trainer.reward_funcs[0].last
    assert r.immediate == pytest.approx([0.9, 0.1, 0.9, 0.1])
    if variant == "paper":
        assert r.cumulative == pytest.approx([0.9 + 0.25, 0.1 + 0.25, 0.9, 0.1])
        # per stage group of two: (R - mean) / (Bessel std + 1e-4) = +-0.4 / (0.4 sqrt(2) + 1e-4)
        a = 0.4 / (0.4 * 2 ** 0.5 + 1e-4)
        assert rollout["advantages"].tolist() == pytest.approx([a, -a, a, -a], rel=1e-5)
    else:  # the picked rollout gets gamma x mean R(P2), the other the flat bonus
        assert sorted(r.cumulative[:2]) in (pytest.approx([0.1 + 0.25, 0.9 + 0.45]),
                                            pytest.approx([0.1 + 0.45, 0.9 + 0.25]))
    assert after["science"] > before["science"] and after["cooking"] < before["cooking"]
