"""What the three stages share: resolving and loading the base model, LoRA, the TRL arguments every
stage takes, the JSONL training log, and the final save."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelSpecError, ModelUnavailableError
from ..llm.base import TRAIN_RECORD
from .config import TrainConfig

TRAIN_LOG = "train_log.jsonl"
FINAL = "final"


def require_train_extra():
    """Import TRL and peft, or say how to install them."""
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailableError(
            f"training needs the [train] extra ({exc.name} is missing): pip install 'prefscribe[train]'") from None


def resolve_model_path(model: str) -> str:
    """A folder or model id for transformers from `embedded:<size>`, `hf:<path>` or a plain path/id."""
    from ..llm.spec import parse_spec

    try:
        spec = parse_spec(model)
    except ModelSpecError:
        return model  # not a spec: a folder or a model id
    if spec.kind == "embedded":
        from ..llm.embedded import converted_dir

        return str(converted_dir(spec.name))
    if spec.kind == "hf":
        return spec.name
    raise InputError(f"training needs weights to load; {model!r} names a {spec.kind} backend: give a folder, "
                     "hf:<folder-or-id> or embedded:0.5b", field="model")


def _unavailable(config: TrainConfig, path: str, exc: Exception) -> ModelUnavailableError:
    return ModelUnavailableError(f"cannot load the base model {config.model!r} ({path}): {exc}. Give a local "
                                 "folder, hf:<folder>, or embedded:0.5b")


def load_tokenizer(config: TrainConfig, padding_side: str = "right"):
    from transformers import AutoTokenizer

    path = resolve_model_path(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side=padding_side)
    except OSError as exc:
        raise _unavailable(config, path, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(config: TrainConfig, padding_side: str = "right"):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(config, padding_side)
    path = resolve_model_path(config.model)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, config.dtype))
    except OSError as exc:
        raise _unavailable(config, path, exc) from None
    return model, tokenizer


def peft_config(config: TrainConfig):
    if not config.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")


def trl_args(config: TrainConfig, **stage: Any) -> dict[str, Any]:
    """Keyword arguments of the stage's TRL config: what every stage sets the same way, then the stage's
    own (`stage`), then `config.trl` verbatim."""
    import torch

    has_gpu = torch.cuda.is_available()
    args = {
        "output_dir": config.output_dir,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": config.warmup_ratio,  # a float < 1 is a share of the total steps
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "logging_steps": config.logging_steps,
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "seed": config.seed,
        "bf16": config.bf16,
        "fp16": False,
        "use_cpu": not has_gpu,
        "report_to": config.report_to or "none",
        "dataloader_num_workers": 0,
    }
    # transformers renamed gradient_checkpointing to activation_checkpointing (the old name warns).
    from transformers import TrainingArguments

    names = TrainingArguments.__dataclass_fields__
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    args[key] = config.gradient_checkpointing
    args.update(stage)
    args.update(config.trl)
    return args


def log_callback(output_dir: str | Path):
    """A TrainerCallback appending every log record (with its step) to `<output_dir>/train_log.jsonl`."""
    from transformers import TrainerCallback

    path = Path(output_dir) / TRAIN_LOG

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or not state.is_world_process_zero:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            row = {"step": state.global_step, "epoch": state.epoch, **logs}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, default=float) + "\n")

    return JsonlLog()


def save_final(trainer, tokenizer, config: TrainConfig) -> Path | None:
    """Save a plain transformers folder with the tokenizer, loadable as `hf:<folder>`: LoRA merged into the
    weights; otherwise through Trainer.save_model, which gathers sharded (ZeRO-3, FSDP) weights."""
    if not config.save_final:
        return None
    out = Path(config.output_dir) / FINAL
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # a peft model
        import copy

        merged = copy.deepcopy(model).merge_and_unload()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(out)
            tokenizer.save_pretrained(out)
    else:
        trainer.save_model(str(out))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(out)
        from ..prompts import get_prompts

        # `style` tells the hf backend how the checkpoint writes profiles (a direct predictor writes none).
        record = {"config": config.model_dump(mode="json"), "prompt_version": get_prompts(config.prompts).version,
                  "style": getattr(config, "style", "direct")}
        (out / TRAIN_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return out


def resume_arg(config: TrainConfig) -> bool | str | None:
    resume = config.resume_from_checkpoint
    if resume is True:
        folder = Path(config.output_dir)
        if not any(folder.glob("checkpoint-*")):
            raise InputError(f"resume_from_checkpoint: no checkpoint-* folder in {folder}", field="resume_from_checkpoint")
    return resume or None


def read_jsonl_rows(path: str | Path) -> list[tuple[int, Any]]:
    """(line number, parsed object) for every non-blank line, or InputError naming the line."""
    from ..data import resolve_data_path

    path = resolve_data_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number) from None
    if not rows:
        raise InputError("the file has no records", path=str(path))
    return rows
