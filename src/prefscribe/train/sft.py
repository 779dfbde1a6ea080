"""Supervised fine-tuning on the chat records of `prefscribe synth` (TRL SFTTrainer).

A record is {"prompt": [chat messages], "completion": [{"role": "assistant", "content":
"<think>reasoning</think>summary"}]}, its prompt built by the same inference templates as inference. The
base model's chat template renders it; the loss covers the completion tokens only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import InputError
from ._common import (
    load_model_and_tokenizer,
    log_callback,
    peft_config,
    read_jsonl_rows,
    require_train_extra,
    resume_arg,
    save_final,
    trl_args,
)
from .config import SFTTrainConfig


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRecord(BaseModel):
    """One prompt-completion training record. Other keys (ids, metadata) are ignored."""

    model_config = ConfigDict(extra="ignore")

    prompt: list[ChatMessage]
    completion: list[ChatMessage]

    @field_validator("prompt")
    @classmethod
    def _prompt_ends_with_user(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if not value or value[-1].role != "user":
            raise ValueError("must be a non-empty list of messages ending with a user message")
        return value

    @field_validator("completion")
    @classmethod
    def _one_assistant_reply(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if len(value) != 1 or value[0].role != "assistant" or not value[0].content.strip():
            raise ValueError("must be exactly one non-empty assistant message")
        return value


def read_chat_records(path: str | Path) -> list[dict]:
    """Validated records as plain dicts (prompt, completion), or InputError naming the line and field."""
    out = []
    for number, obj in read_jsonl_rows(path):
        try:
            record = ChatRecord.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(first["msg"], path=str(path), line=number,
                             field=".".join(str(p) for p in first["loc"])) from None
        out.append(record.model_dump())
    return out


def split_eval(rows: list, ratio: float, seed: int) -> tuple[list, list]:
    """Hold out round(ratio * n) rows (at least one when ratio > 0), chosen with `seed`."""
    if ratio <= 0 or len(rows) < 2:
        return rows, []
    import random

    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(rows) - 1, max(1, round(ratio * len(rows))))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def build_trainer(config: SFTTrainConfig, train_rows: list[dict], eval_rows: list[dict],
                  eval_steps: int | None = None):
    """An SFTTrainer for prompt-completion conversational rows (completion-only loss)."""
    require_train_extra()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model_and_tokenizer(config)
    evaluate = bool(eval_rows)
    args = SFTConfig(**trl_args(
        config,
        max_length=config.max_length,
        completion_only_loss=True,
        packing=False,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=(eval_steps or config.save_steps) if evaluate else None,
        per_device_eval_batch_size=config.per_device_train_batch_size,
    ))
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_rows),
                      eval_dataset=Dataset.from_list(eval_rows) if evaluate else None,
                      processing_class=tokenizer, peft_config=peft_config(config),
                      callbacks=[log_callback(config.output_dir)])


def evaluate_at_end(trainer) -> None:
    """The eval loss of the final weights, unless the last step was just evaluated."""
    state = trainer.state
    if not any("eval_loss" in row and row.get("step") == state.global_step for row in state.log_history):
        trainer.evaluate()


def train_sft(config: SFTTrainConfig) -> Path | None:
    """Run SFT; return the folder of the final model (`hf:<folder>`), or None when save_final is off."""
    rows = read_chat_records(config.train_file)
    if config.eval_file:
        train_rows, eval_rows = rows, read_chat_records(config.eval_file)
    else:
        train_rows, eval_rows = split_eval(rows, config.eval_ratio, config.seed)
    trainer = build_trainer(config, train_rows, eval_rows, config.eval_steps)
    trainer.train(resume_from_checkpoint=resume_arg(config))
    if eval_rows:
        evaluate_at_end(trainer)
    return save_final(trainer, trainer.processing_class, config)
