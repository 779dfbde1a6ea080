"""Streaming GRPO with the cumulative reward (METHOD.md section 6), on TRL's GRPOTrainer.

Per RL record (H[0:k], h_k, H[k:K], h_K), one rollout batch holds 2G sequences:
  stage 1   G summaries P1_i of H[0:k]                        judged on h_k
  pick      one P1 at random among those that passed the format gate
  stage 2   G updates P2_j of that summary with H[k:K]        judged on h_K
  reward    R(P2_j) = r(P2_j);  R(P1_i) = r(P1_i) + gamma * mean_j R(P2_j)   (rewards.py)
  advantage R normalized within each stage group of G; PPO-clipped token loss averaged per sequence, no KL.

What is ours: the two-stage rollout (TRL's `rollout_func` hook, generating with the trainer's own
generation path, so vLLM works as in TRL) and the per-stage-group advantages. TRL does the rest: sampling,
the old/new log-probabilities, the clipped loss (`loss_type="grpo"`), optimizer, checkpoints, accelerate.

TRL counts a record's 2G sequences as one "generation group" (num_generations = 2G), so its sampler keeps
them together on one device; its advantages over those 2G rows are replaced by per-stage ones.

Several GPUs: `accelerate launch -m prefscribe.train rl --config configs/rl.yaml` (each process loads the
judge spec; point it at one shared OpenAI-compatible server).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer

from ..errors import InputError
from ..judge import Judge
from ..llm import load_backend
from ..prompts import Style, get_prompts
from ._common import (
    load_model_and_tokenizer,
    log_callback,
    peft_config,
    require_train_extra,
    resume_arg,
    save_final,
    trl_args,
)
from .config import RLTrainConfig
from .records import PromptBuilder, RLRecord, read_rl_records
from .rewards import StreamingReward, summary_of


class StreamingGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rollout is the two-stage streaming one and whose advantages are normalized per
    stage group. `args.num_generations` must be 2 x `group_size`."""

    def __init__(self, *args, prompt_builder: PromptBuilder, group_size: int, style: Style = "reasoning",
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_generations != 2 * group_size:
            raise InputError(f"args.num_generations must be 2 x group_size = {2 * group_size}, "
                             f"not {self.num_generations}")
        self.group_size, self.style = group_size, style
        self.prompt_builder = prompt_builder
        self.rollout_func = self._two_stage_rollout  # TRL's rollout hook
        self._pick_rng = random.Random(self.args.seed + self.accelerator.process_index)
        self._batch: list[dict[str, Any]] = []
        self._total_rewards: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------- rollout
    def _generate_and_score_completions(self, inputs):
        self._batch = inputs  # the rollout reads the records of this batch
        output = super()._generate_and_score_completions(inputs)
        # Replace TRL's advantages (normalized over a record's 2G rows) by per-stage-group ones: rows run
        # [G stage-1 | G stage-2] per record on every process, so consecutive groups of G are the stage groups.
        rewards = self._total_rewards
        grouped = rewards.view(-1, self.group_size)
        mean = grouped.mean(dim=1, keepdim=True)
        std = grouped.std(dim=1, keepdim=True)  # Bessel-corrected, like TRL
        advantages = ((grouped - mean) / (std + 1e-4)).view(-1)
        local = slice(self.accelerator.process_index * len(inputs), (self.accelerator.process_index + 1) * len(inputs))
        output["advantages"] = advantages[local].to(output["advantages"].device)
        return output

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # all processes
        self._total_rewards = torch.nan_to_num(
            (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1), nan=0.0)
        return per_func

    def _two_stage_rollout(self, prompts: list, trainer: GRPOTrainer) -> dict[str, Any]:
        G, n = self.group_size, len(prompts)
        if n % (2 * G) or len(self._batch) != n:
            raise InputError(f"a rollout batch of {n} rows does not hold whole records of 2 x {G} rows")
        starts = range(0, n, 2 * G)
        records = [RLRecord.model_validate_json(self._batch[b]["record"]) for b in starts]

        # Stage 1: G summaries of H[0:k] per record (the dataset prompt, repeated by TRL's sampler).
        s1_prompts = [prompts[b + j] for b in starts for j in range(G)]
        s1_prompt_ids, s1_ids, s1_logps = self._sample(s1_prompts)
        s1_text = self.processing_class.batch_decode(s1_ids, skip_special_tokens=True)
        s1_cut = [self._cut_off(ids) for ids in s1_ids]

        # Pick one well-formed summary per record at random; stage 2 updates it with H[k:K]. With none
        # well-formed, stage 2 starts from no past summary (a malformed one must not be passed on).
        picks: list[int | None] = []
        s2_prompts = []
        for r, record in enumerate(records):
            summaries = [summary_of(s1_text[r * G + j], s1_cut[r * G + j], self.style) for j in range(G)]
            valid = [j for j, s in enumerate(summaries) if s is not None]
            pick = self._pick_rng.choice(valid) if valid else None
            picks.append(pick)
            s2_prompts.extend([self.prompt_builder(record.stage2_history,
                                                   summaries[pick] if pick is not None else None)] * G)
        s2_prompt_ids, s2_ids, s2_logps = self._sample(s2_prompts)
        s2_cut = [self._cut_off(ids) for ids in s2_ids]

        out: dict[str, list] = {k: [] for k in ("prompt_ids", "completion_ids", "logprobs", "stage", "selected",
                                                "truncated")}
        for r in range(len(records)):
            rows = slice(r * G, (r + 1) * G)
            out["prompt_ids"] += list(s1_prompt_ids[rows]) + list(s2_prompt_ids[rows])
            out["completion_ids"] += list(s1_ids[rows]) + list(s2_ids[rows])
            if s1_logps is not None and s2_logps is not None:
                out["logprobs"] += list(s1_logps[rows]) + list(s2_logps[rows])
            out["stage"] += [1] * G + [2] * G
            out["selected"] += [picks[r] == j for j in range(G)] + [False] * G
            out["truncated"] += s1_cut[rows] + s2_cut[rows]
        if s1_logps is None or s2_logps is None:
            out["logprobs"] = None  # type: ignore[assignment]
        return out

    def _sample(self, conversations: list) -> tuple[list, list, list | None]:
        """One completion per conversation through TRL's own generation path (transformers or vLLM)."""
        prompt_ids, _, _ = self._tokenize_prompts(conversations)
        completion_ids, logprobs = self._generate_single_turn(prompt_ids, None, {}, self.group_size)
        return list(prompt_ids), [list(c) for c in completion_ids], logprobs

    def _cut_off(self, ids: list[int]) -> bool:
        return not ids or ids[-1] not in self.eos_token_ids


# ------------------------------------------------------------------------------------------ entry point
def build_trainer(config: RLTrainConfig, records: list[RLRecord], judge: Judge | None = None,
                  model=None, tokenizer=None) -> StreamingGRPOTrainer:
    """The trainer for `records`; `judge`/`model`/`tokenizer` default to the config's (tests pass their own)."""
    from datasets import Dataset

    require_train_extra()
    if model is None or tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(config, padding_side="left")
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    builder = PromptBuilder(get_prompts(config.prompts), count, config.max_prompt_length,
                            config.max_completion_length, config.style)
    rows = [{"prompt": builder(r.stage1_history, None), "record": r.model_dump_json()} for r in records]
    judge = judge or Judge(load_backend(config.judge), orders=config.judge_orders, seed=config.seed,
                           prompts=get_prompts(config.prompts))
    reward = StreamingReward(judge, config.num_generations, config.gamma, config.cumulative,
                             config.reference_bonus, config.gate_scope, config.style)
    G = config.num_generations
    args = GRPOConfig(**trl_args(
        config,
        num_generations=2 * G,
        steps_per_generation=config.steps_per_generation,
        num_iterations=config.num_iterations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        beta=0.0,                      # no KL term
        epsilon=config.epsilon,
        epsilon_high=config.epsilon_high,
        loss_type="grpo",              # token losses averaged per sequence, then over sequences
        scale_rewards="group",
        mask_truncated_completions=False,  # a cut-off reply keeps its 0 reward and is pushed down
        shuffle_dataset=True,
    ))
    per_rollout = args.generation_batch_size // args.num_generations
    if per_rollout > len(rows):
        raise InputError(f"one rollout batch takes {per_rollout} records but the file has {len(rows)}: lower "
                         "per_device_train_batch_size or steps_per_generation, or add records",
                         path=config.train_file)
    return StreamingGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, peft_config=peft_config(config),
                                callbacks=[log_callback(config.output_dir)], prompt_builder=builder, group_size=G,
                                style=config.style)


def train_rl(config: RLTrainConfig) -> Path | None:
    """Run streaming GRPO; write the log plot next to the log; return the final model folder."""
    from .logs import plot_training

    trainer = build_trainer(config, read_rl_records(config.train_file))
    trainer.train(resume_from_checkpoint=resume_arg(config))
    final = save_final(trainer, trainer.processing_class, config)
    if trainer.accelerator.is_main_process:
        plot_training(Path(config.output_dir) / "train_log.jsonl", Path(config.output_dir) / "training.png")
    return final
