"""SFT on a tiny random model: completion-only loss, the loss falls, eval loss, checkpoints, resume, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("trl")

from prefscribe.cli import app
from prefscribe.llm import load_backend
from prefscribe.llm.hf import HFBackend
from prefscribe.train import load_config, train_sft
from prefscribe.train.logs import read_log
from prefscribe.train.sft import build_trainer, read_chat_records

REPLY = "<think>They pick science.</think>The user prefers short, practical answers."


@pytest.fixture
def sft_file(tmp_path):
    path = tmp_path / "sft.jsonl"
    rows = [{"prompt": [{"role": "system", "content": "You study how a person makes choices."},
                        {"role": "user", "content": f"## Interaction History\nQUERY: Question {i}?\n"
                                                    f"CHOSEN ITEM BY THE USER: A science answer {i}."}],
             "completion": [{"role": "assistant", "content": REPLY}]} for i in range(8)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _config(tiny_model_dir, sft_file, out, *extra):
    return load_config("sft", None, [f"model={tiny_model_dir}", f"output_dir={out}", f"train_file={sft_file}",
                                     "learning_rate=2e-3", "lr_scheduler_type=constant", "warmup_ratio=0",
                                     "per_device_train_batch_size=3", "max_length=256", *extra])


def test_loss_is_on_the_completion_only(tiny_model_dir, sft_file, tmp_path):
    config = _config(tiny_model_dir, sft_file, tmp_path / "out")
    trainer = build_trainer(config, read_chat_records(sft_file), [])
    row = trainer.train_dataset[0]
    ids = row["input_ids"]
    labels = trainer.data_collator([row])["labels"][0].tolist()
    tokenizer = trainer.processing_class
    trained = tokenizer.decode([t for t, label in zip(ids, labels) if label != -100])
    untrained = tokenizer.decode([t for t, label in zip(ids, labels) if label == -100])
    assert trained.startswith(REPLY) and trained[len(REPLY):].strip() == "<|im_end|>"  # reply + end of turn
    assert "Question 0?" in untrained and "They pick science" not in untrained


def test_sft_loss_falls_with_eval_checkpoints_and_final_model(tiny_model_dir, sft_file, tmp_path):
    out = tmp_path / "out"
    config = _config(tiny_model_dir, sft_file, out, "num_train_epochs=3", "eval_ratio=0.25", "save_steps=3")
    final = train_sft(config)
    log = read_log(out / "train_log.jsonl")
    losses = [row["loss"] for row in log if "loss" in row]
    evals = [row["eval_loss"] for row in log if "eval_loss" in row]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5
    assert len(evals) == 2 and evals[-1] < evals[0]
    assert (out / "checkpoint-3").is_dir() and (out / "checkpoint-6").is_dir()
    saved = json.loads((final / "prefscribe_train.json").read_text())
    assert saved["prompt_version"].startswith("v1+") and saved["config"]["train_file"] == str(sft_file)
    # The checkpoint says it writes <think> profiles, so `hf:<folder>` infers in the reasoning style.
    assert saved["style"] == "reasoning"
    assert load_backend(f"hf:{final}").info.thinks and not load_backend(f"hf:{tiny_model_dir}").info.thinks
    # The final folder is a plain transformers model: hf:<folder> loads it, with trained weights.
    tuned = HFBackend.from_path(final, dtype="float32")
    base = HFBackend.from_path(tiny_model_dir, dtype="float32")
    prompt = read_chat_records(sft_file)[0]["prompt"]
    reply = [REPLY]
    assert tuned.continuation_logprobs([prompt], reply)[0] > base.continuation_logprobs([prompt], reply)[0] + 5


def test_cli_resumes_from_the_latest_checkpoint(tiny_model_dir, sft_file, tmp_path):
    out = tmp_path / "out"
    config = tmp_path / "sft.yaml"
    config.write_text(f"model: {tiny_model_dir}\ntrain_file: {sft_file}\noutput_dir: {out}\nmax_length: 256\n"
                      "per_device_train_batch_size: 4\nsave_steps: 2\nsave_final: false\n")
    runner = CliRunner()
    first = runner.invoke(app, ["train", "sft", "--config", str(config), "--set", "max_steps=2"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["train", "sft", "-c", str(config), "-s", "max_steps=4",
                                 "-s", "resume_from_checkpoint=true"])
    assert second.exit_code == 0, second.output
    steps = [row["step"] for row in read_log(out / "train_log.jsonl") if "loss" in row]
    assert steps == [1, 2, 3, 4]  # the second run went on from step 2
    assert (out / "checkpoint-4").is_dir() and not (out / "final").exists()
    bad = runner.invoke(app, ["train", "sft", "-c", str(config), "-s", "lerning_rate=1"])
    assert bad.exit_code == 2 and "lerning_rate" in bad.output


def test_lora_trains_adapters_only_and_saves_a_merged_model(tiny_model_dir, sft_file, tmp_path):
    import torch

    config = _config(tiny_model_dir, sft_file, tmp_path / "out", "max_steps=2", "save_steps=100", "lora.enabled=true",
                     "lora.r=4", "lora.alpha=8", "learning_rate=2e-2")
    trainer = build_trainer(config, read_chat_records(sft_file), [])
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    trainer.train()
    from prefscribe.train import save_final

    final = save_final(trainer, trainer.processing_class, config)
    tuned = HFBackend.from_path(final, dtype="float32")  # a plain model: no adapter files needed
    base = HFBackend.from_path(tiny_model_dir, dtype="float32")
    assert not (final / "adapter_config.json").exists()
    differs = [n for n, p in tuned.model.named_parameters()
               if not torch.equal(p, dict(base.model.named_parameters())[n])]
    assert differs and all("proj" in n for n in differs)  # the merged LoRA deltas sit in the linear layers
