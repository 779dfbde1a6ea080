"""The direct predictor (TALLRec-style): fine-tune a model to answer, from the raw history, which of two
items the user prefers, in the judge's own JSON. It is the strong scorer of curriculum pruning
(`--strong hf:<output_dir>/final`) and the raw-history row of the evaluation (`--model hf:<...>
--settings raw`): both read it through the core Judge, so the prompt is PromptSet.direct_messages and the
answer {"selection": "Item A" | "Item B"} is scored by the log-probability of the letter after the prefill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..prompts import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, get_prompts
from ..schema import Interaction, Target, UserRecord
from .config import DataSource, DirectTrainConfig


def answer_text(letter: str) -> str:
    """The judge's answer as the model must write it: the prefill, the option, the closing."""
    option = dict(zip("AB", JUDGE_OPTIONS))[letter]
    return f'{JUDGE_PREFILL}{option}"}}'


@dataclass
class Point:
    """Predict `target` from `history` (the interactions before it)."""

    user_id: str
    history: Sequence[Interaction]
    target: Target


def points_of(record: UserRecord, mode: str = "all", min_history: int = 1,
              max_points: int | None = None) -> list[Point]:
    """Training points of one user: the held-out target after the whole history, and with mode "all" every
    history pair h_m (with a rejected item) after H[0:m]; at most `max_points`, the most recent kept."""
    out: list[Point] = []
    if mode == "all":
        for m in range(max(min_history, 0), len(record.history)):
            item = record.history[m]
            if item.rejected is not None:
                out.append(Point(record.user_id, record.history[:m],
                                 Target(context=item.context, chosen=item.chosen, rejected=item.rejected)))
    if record.target is not None and len(record.history) >= min_history:
        out.append(Point(record.user_id, record.history, record.target))
    return out[-max_points:] if max_points else out


def examples_of(points: Iterable[Point], orders: str, prompts: PromptSet, budget_tokens: int,
                count_tokens: Callable[[str], int]) -> list[dict]:
    """Prompt-completion chat rows. A/B balance: `both` emits each point in both orders; `alternate` puts
    the true item first on every other point."""
    rows = []
    for i, point in enumerate(points):
        t = point.target
        layouts = [True, False] if orders == "both" else [i % 2 == 0]
        for chosen_first in layouts:
            a, b = (t.chosen, t.rejected) if chosen_first else (t.rejected, t.chosen)
            prompt = prompts.direct_messages(point.history, t.context, a, b, budget_tokens, count_tokens)
            rows.append({"prompt": prompt,
                         "completion": [{"role": "assistant", "content": answer_text("A" if chosen_first else "B")}]})
    return rows


def load_users(sources: Sequence[DataSource], seed: int) -> list[UserRecord]:
    from ..data import load, resolve_data_path
    from ._common import read_jsonl_rows

    users: list[UserRecord] = []
    for source in sources:
        if source.loader == "records":
            users.extend(UserRecord.model_validate(obj) for _, obj in read_jsonl_rows(source.path))
        else:
            users.extend(load(source.loader, resolve_data_path(source.path), limit=source.limit, seed=seed,
                              **source.options))
    return users


def build_rows(config: DirectTrainConfig, users: Sequence[UserRecord], count_tokens) -> tuple[list, list]:
    """(train rows, eval rows), split by user so no user is in both."""
    from .sft import split_eval

    prompts = get_prompts(config.prompts)
    train_users, eval_users = split_eval(list(users), config.eval_ratio, config.seed)

    def rows(group):
        points = [p for u in group for p in points_of(u, config.points, config.min_history,
                                                        config.max_points_per_user)]
        return examples_of(points, config.orders, prompts, config.max_history_tokens, count_tokens)

    return rows(train_users), rows(eval_users)


def train_direct(config: DirectTrainConfig, users: Sequence[UserRecord] | None = None) -> Path | None:
    """Train the direct predictor on `users` (default: the config's data sources); return the final folder."""
    from ..errors import InputError
    from ._common import load_tokenizer, require_train_extra, resume_arg, save_final
    from .sft import build_trainer, evaluate_at_end

    require_train_extra()
    users = list(users) if users is not None else load_users(config.data, config.seed)
    tokenizer = load_tokenizer(config)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    train_rows, eval_rows = build_rows(config, users, count)
    if not train_rows:
        raise InputError("no training point: every user lacks a target and a history pair with a rejected item "
                         f"after {config.min_history} interactions")
    trainer = build_trainer(config, train_rows, eval_rows, config.eval_steps)
    trainer.train(resume_from_checkpoint=resume_arg(config))
    if eval_rows:
        evaluate_at_end(trainer)
    return save_final(trainer, trainer.processing_class, config)
