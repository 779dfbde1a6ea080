"""Training: SFT on synthesized profiles, the direct (TALLRec-style) predictor, and streaming GRPO with the
cumulative reward, on TRL + peft (the `[train]` extra).

    prefscribe train sft    --config configs/sft.yaml
    prefscribe train direct --config configs/direct.yaml
    prefscribe train rl     --config configs/rl.yaml --set gamma=0.5
    accelerate launch -m prefscribe.train rl --config configs/rl.yaml      # several GPUs

The reward functions and configs import without TRL; the trainers import it when first used.
"""

from __future__ import annotations

from typing import Any

from ._common import save_final
from .config import (
    DataSource,
    DirectTrainConfig,
    LoraSettings,
    RLTrainConfig,
    SFTTrainConfig,
    TrainConfig,
    load_config,
)
from .records import PromptBuilder, RLRecord, read_rl_records
from .rewards import (
    StreamingReward,
    cumulative_rewards,
    format_reward,
    group_normalize,
    judge_rewards,
    summary_of,
)

__all__ = ["DataSource", "DirectTrainConfig", "LoraSettings", "PromptBuilder", "RLRecord", "RLTrainConfig",
           "SFTTrainConfig", "StreamingReward", "TrainConfig", "cumulative_rewards", "format_reward",
           "group_normalize", "judge_rewards", "load_config", "plot_training", "read_rl_records", "run",
           "save_final", "summary_of", "train_direct", "train_rl", "train_sft"]

_LAZY = {"train_sft": ".sft", "train_direct": ".direct", "train_rl": ".rl", "plot_training": ".logs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        from ._common import require_train_extra

        if name != "plot_training":
            require_train_extra()
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(stage: str, config: TrainConfig):
    """Run one stage with its config; returns the final model folder (or None)."""
    from importlib import import_module

    from ._common import require_train_extra

    require_train_extra()
    module = {"sft": ".sft", "direct": ".direct", "rl": ".rl"}[stage]
    return getattr(import_module(module, __name__), f"train_{stage}")(config)
