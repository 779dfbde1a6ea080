"""Typed configs for the three training stages: YAML files (configs/*.yaml) plus command-line overrides.

    config = load_config("rl", "configs/rl.yaml", ["gamma=0.5", "lora.enabled=true"])

Each field is documented once, in its docstring below; `prefscribe train <stage> --help` and the YAML
presets point here. Anything TRL accepts that is not a field here goes in `trl:` verbatim.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import InputError
from ..judge import Orders
from ..prompts import Style
from .rewards import GateScope, Variant

Stage = Literal["sft", "direct", "rl"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class LoraSettings(_Config):
    """Low-rank adapters (peft). Off by default: the paper fine-tunes all weights."""

    enabled: bool = False
    """Train LoRA adapters instead of all weights."""
    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] | str = "all-linear"
    """Modules that get adapters: a list of names, or "all-linear"."""


class TrainConfig(_Config):
    """What every stage shares: the base model, the optimizer schedule, checkpoints and logging."""

    model: str
    """Base model: a local folder or model id, `hf:<folder-or-id>`, or `embedded:0.5b` / `embedded:1.5b`."""
    output_dir: str
    """Checkpoints, the JSONL training log and the final model (`<output_dir>/final`) go here."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weight dtype at load. Keep float32 master weights for full fine-tuning (with `bf16: true` for mixed
    precision); with LoRA, bfloat16 base weights halve memory and speed up CPU generation."""
    bf16: bool = False
    """bf16 mixed precision (autocast) for the forward and backward passes."""
    learning_rate: float = 2e-5
    """Peak learning rate."""
    lr_scheduler_type: str = "cosine"
    """transformers scheduler name: cosine, linear, constant, constant_with_warmup, ..."""
    warmup_ratio: float = 0.1
    """Share of the total optimizer steps spent warming the learning rate up from 0."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    num_train_epochs: float = 1.0
    """Passes over the training data."""
    max_steps: int = -1
    """Stop after this many optimizer steps (overrides num_train_epochs when > 0)."""
    per_device_train_batch_size: int = 1
    """Sequences per device per forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward passes per optimizer step (global batch = per_device x devices x accumulation)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~20% more compute."""
    logging_steps: int = 1
    """Log every this many optimizer steps."""
    save_steps: int = 500
    """Checkpoint every this many optimizer steps (`<output_dir>/checkpoint-<step>`)."""
    save_total_limit: int | None = 2
    """Keep at most this many checkpoints (older ones are deleted)."""
    resume_from_checkpoint: bool | str | None = None
    """Resume: true for the latest checkpoint in output_dir, or a checkpoint folder."""
    seed: int = 0
    """Seed of data order, sampling, adapters and the RL stage-1 pick."""
    lora: LoraSettings = LoraSettings()
    """LoRA adapters (see LoraSettings)."""
    prompts: str | None = None
    """Folder of prompt templates overriding the built-in set: training must use the templates that
    inference and evaluation will use."""
    save_final: bool = True
    """Save the final model (LoRA merged into the weights) with its tokenizer to `<output_dir>/final`, loadable
    as `hf:<output_dir>/final`."""
    report_to: list[str] = []
    """Experiment trackers (wandb, tensorboard, ...); none by default."""
    trl: dict[str, Any] = {}
    """Further TRL/transformers config fields, passed verbatim (e.g. {deepspeed: ds.json, optim: adamw_torch})."""


class SFTTrainConfig(TrainConfig):
    """Supervised fine-tuning on the chat records of `prefscribe synth`: loss on the completion only.
    Paper preset: lr 2e-5 cosine, warmup 0.1, 4 epochs, batch 16, max length 16,384."""

    train_file: str
    """JSONL of {"prompt": [messages], "completion": [{"role": "assistant", "content": "<think>...</think>summary"}]}."""
    style: Style = "reasoning"
    """Profile style the records teach (synth writes `<think>...</think>summary`): recorded with the checkpoint,
    so `hf:<folder>` writes profiles in it."""
    eval_file: str | None = None
    """Held-out records in the same format; when absent, `eval_ratio` of train_file is held out."""
    eval_ratio: float = 0.0
    """Share of train_file held out for the eval loss when there is no eval_file (0: no evaluation)."""
    eval_steps: int | None = None
    """Evaluate every this many steps (default: at every save)."""
    max_length: int = 16384
    """Longest prompt + completion in tokens; longer records are truncated (their completion end is lost:
    prefer to drop them upstream)."""
    learning_rate: float = 2e-5
    num_train_epochs: float = 4.0


class DataSource(_Config):
    """One benchmark file read by a prefscribe.data loader (or `records`: JSONL of UserRecord)."""

    loader: str
    """A prefscribe.data loader name (upi, psoups, amazon, mind, movielens, ...) or `records`."""
    path: str
    """The file; a relative path missing here is looked up under $PREFSCRIBE_DATA."""
    limit: int | None = None
    """Sample at most this many users (seeded)."""
    options: dict[str, Any] = {}
    """The loader's own keyword arguments."""


class DirectTrainConfig(TrainConfig):
    """A TALLRec-style direct predictor: from the raw history, answer the judge JSON for the preferred item.
    The strong scorer of curriculum pruning, and the raw-history baseline of the evaluation."""

    data: list[DataSource]
    """Where the users come from."""
    points: Literal["target", "all"] = "all"
    """`target`: one example per user (the whole history, the held-out target); `all`: also every history
    prefix H[0:m] with the next pair h_m as the answer (the points pruning scores)."""
    min_history: int = 1
    """Fewest history interactions before a training point."""
    max_points_per_user: int | None = None
    """Keep at most this many points per user (the most recent ones)."""
    orders: Literal["both", "alternate"] = "both"
    """A/B balance: `both` shows every pair in both orders (exactly balanced, twice the examples);
    `alternate` puts the true item first on every other example."""
    max_history_tokens: int = 3000
    """Token budget of the rendered history (the most recent interactions are kept)."""
    eval_ratio: float = 0.0
    """Share of users held out for the eval loss (0: no evaluation)."""
    eval_steps: int | None = None
    """Evaluate every this many steps (default: at every save)."""
    max_length: int = 4096
    """Longest prompt + answer in tokens."""
    learning_rate: float = 1e-5
    num_train_epochs: float = 1.0


class RLTrainConfig(TrainConfig):
    """Streaming GRPO with the cumulative reward (METHOD.md section 6). Paper preset: G = 4, lr 1e-6,
    prompt 8,192 / response 4,096, 1 epoch, 128 records per rollout, 512 sequences per optimizer step."""

    train_file: str
    """JSONL of RL records {"user_id", "history", "k", "K"} from curriculum pruning (see train.rl.RLRecord)."""
    judge: str = "openai:Qwen/Qwen3-8B@http://localhost:8000/v1"
    """Model spec of the reward judge (any backend; the paper: Qwen3-8B behind an OpenAI-compatible server)."""
    judge_orders: Orders = "both"
    """Item orders the judge sees: both averaged (position-debiased) by default."""
    style: Style = "reasoning"
    """Summary style of the policy: `reasoning` (think, then summarize: the paper's format gate) or `direct`
    (summary only), the style `prefscribe infer` uses for models that do not think, such as the embedded ones."""
    num_generations: int = 4
    """G: rollouts per stage group. Each record yields G stage-1 and G stage-2 sequences."""
    gamma: float = 0.9
    """Weight of the stage-2 rewards in the stage-1 cumulative reward, in [0, 1]."""
    cumulative: Variant = "paper"
    """`paper`: R(P1_i) = r(P1_i) + gamma * mean_j R(P2_j) for every stage-1 rollout; `reference`: that
    for the rollout that was picked, r(P1_i) + reference_bonus for the others (the public code's shortcut)."""
    reference_bonus: float = 0.45
    """Flat bonus of the non-picked stage-1 rollouts under `cumulative: reference`."""
    gate_scope: GateScope = "total"
    """Format gate: `total` gives a malformed stage-1 rollout R = 0 (it wrote no summary to build on);
    `immediate` zeroes only its r and still adds the stage-2 term."""
    epsilon: float = 0.2
    """PPO clip range: ratios are clipped to [1 - epsilon, 1 + epsilon_high]."""
    epsilon_high: float | None = None
    """Upper clip range (default: epsilon)."""
    num_iterations: int = 1
    """Optimization passes over each batch of rollouts (mu)."""
    steps_per_generation: int | None = None
    """Optimizer-step slices of one rollout batch (default: gradient_accumulation_steps). With more slices
    than accumulation steps, later updates are off-policy and the clipping acts."""
    max_prompt_length: int = 8192
    """Prompt tokens: older interactions are cut to fit (the past summary is always kept)."""
    max_completion_length: int = 4096
    """Response tokens; a response cut here fails the format gate."""
    temperature: float = 1.0
    """Rollout sampling temperature."""
    top_p: float = 1.0
    """Rollout nucleus sampling."""
    top_k: int = 0
    """Rollout top-k (0: off)."""
    learning_rate: float = 1e-6
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0

    @model_validator(mode="after")
    def _groups_stay_whole(self) -> RLTrainConfig:
        # A record's 2G sequences must land on one device in one rollout batch: stage 2 is built from a
        # stage-1 rollout of the same record.
        steps = self.steps_per_generation or self.gradient_accumulation_steps
        rows = self.per_device_train_batch_size * steps
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (advantages are normalized within groups)")
        if rows % (2 * self.num_generations):
            raise ValueError(
                f"per_device_train_batch_size x steps_per_generation = {rows} sequences per device per rollout must "
                f"be a multiple of 2 x num_generations = {2 * self.num_generations} (each record yields G stage-1 and "
                "G stage-2 sequences, which must stay on one device)")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must lie in [0, 1]")
        return self


CONFIGS: dict[str, type[TrainConfig]] = {"sft": SFTTrainConfig, "direct": DirectTrainConfig, "rl": RLTrainConfig}


# ------------------------------------------------------------------------------------------------ loading
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")

def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (["a", "b"], value); the value is read as YAML (numbers, booleans, lists, null)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"override {text!r} is not KEY=VALUE (e.g. learning_rate=1e-5 or lora.enabled=true)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):  # YAML 1.1 reads 1e-5 as a string
        value = float(value)
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return data


def load_config(stage: Stage, path: str | Path | None = None, overrides: list[str] | None = None,
                **values: Any) -> TrainConfig:
    """The stage's config from a YAML file, then `values`, then KEY=VALUE overrides (dotted keys nest)."""
    import yaml

    data: dict[str, Any] = {}
    source = str(path) if path else "<overrides>"
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("config file not found", path=source) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=source,
                             line=mark.line + 1 if mark else None) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError("a config file must be a YAML mapping of field: value", path=source)
        data = loaded or {}
    data.update(values)
    apply_overrides(data, list(overrides or []))
    try:
        return CONFIGS[stage].model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        hint = " (unknown field: see prefscribe.train.config for the fields)" if first["type"] == "extra_forbidden" \
            else ""
        raise InputError(first["msg"] + hint, path=source, field=field) from None
