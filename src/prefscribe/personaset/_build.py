"""Build P-Soups-format sets: replies written under opposing persona instructions, paired into users.

For each dimension (two opposing poles) the model answers every question twice, once under each pole's
instruction (a system prompt), as P-Soups did with GPT-4. A user of pole p keeps p's reply against the other
pole's on `history` questions and is judged on a held-out question none of them uses; the gold preference is
the pole's one-line persona. Replies go through the result cache (`cache.CachedCalls`), `batch` prompts per
call, so a stopped build resumes where it stopped. Everything random comes from the seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..cache import CachedCalls, ResultCache
from ..errors import InputError
from ..llm.base import Backend, Completion, Conversation, Sampling

HISTORY_FIELD = "Pair-wise Comparative Feedback"  # the P-Soups layout `data.load_psoups` reads
ROLE = "personaset-reply"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Pole:
    name: str
    instruction: str  # what the reply writer is told
    persona: str      # the gold preference of the pole's users


@dataclass(frozen=True)
class Dimension:
    name: str
    poles: tuple[Pole, Pole]


@dataclass
class PersonaSetConfig:
    """How a set is built.

    dimensions: names to build (None: every shipped dimension); questions: how many questions to use (None: all),
    a seeded sample of them; users_per_pole: users of each pole per dimension; history: pairs per user (P-Soups:
    4), plus one target; seed: of the question sample, the users' questions and the replies' sampling;
    max_new_tokens / temperature: of each reply; batch: prompts per model call (and per cache write).
    """

    dimensions: Sequence[str] | None = None
    questions: int | None = None
    users_per_pole: int = 60
    history: int = 4
    seed: int = 0
    max_new_tokens: int = 300
    temperature: float = 0.7
    batch: int = 8


@dataclass
class PersonaSet:
    """The users of each dimension (P-Soups JSON objects) and a manifest of how they were made."""

    users: dict[str, list[dict[str, Any]]]
    manifest: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> list[Path]:
        """`<folder>/<dimension>.json` per dimension (a JSON array `data.load_psoups` reads), and manifest.json."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, users in self.users.items():
            path = folder / f"{name}.json"
            path.write_text(json.dumps(users, ensure_ascii=False, indent=1), encoding="utf-8")
            paths.append(path)
        (folder / "manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=2))
        return paths


# ---------------------------------------------------------------------------------------- shipped data
def _shipped(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def load_dimensions() -> tuple[str, list[Dimension]]:
    """The shipped opposing persona pairs and their version."""
    data = _shipped("dimensions.json")
    dims = [Dimension(d["name"], tuple(Pole(p["name"], p["instruction"], p["persona"]) for p in d["poles"]))
            for d in data["dimensions"]]
    return data["version"], dims


def load_questions(path: str | Path | None = None) -> tuple[str, list[str]]:
    """The shipped questions, or those of a file: one per line (.txt), a JSON array of strings, or a JSON array
    of objects with `query` (DSP) or `prompt` (P-Soups); a folder holding one such .json file is read too."""
    if path is None:
        data = _shipped("questions.json")
        return data["version"], list(data["questions"])
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise InputError(f"expected one .json file of questions in the folder, found {len(found)}",
                             path=str(path))
        path = found[0]
    if not path.is_file():
        raise InputError("questions file not found", path=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".txt":
        questions = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        questions = _json_questions(text, path)
    questions = list(dict.fromkeys(questions))  # a repeated question would let a target repeat a history pair
    if not questions:
        raise InputError("no questions in the file", path=str(path))
    return f"file:{path.name}", questions


def _json_questions(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg})", path=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON array of questions", path=str(path))
    out = []
    for i, item in enumerate(data):
        value = item if isinstance(item, str) else (item.get("query") or item.get("prompt")
                                                     if isinstance(item, dict) else None)
        if not isinstance(value, str) or not value.strip():
            raise InputError("expected a question string, or an object with `query` or `prompt`", path=str(path),
                             field=f"[{i}]")
        out.append(value.strip())
    return out


def select_dimensions(dimensions: list[Dimension], names: Sequence[str] | None) -> list[Dimension]:
    if names is None:
        return dimensions
    known = {d.name: d for d in dimensions}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InputError(f"unknown dimension(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(known)}", field="dimensions")
    return [known[n] for n in dict.fromkeys(names)]


# --------------------------------------------------------------------------------------------- build
def reply_messages(pole: Pole, question: str) -> Conversation:
    return [{"role": "system", "content": pole.instruction}, {"role": "user", "content": question}]


def reply_text(completion: Completion) -> str | None:
    """The reply a reader sees, or None when there is none (a failed call, an empty or unfinished reply)."""
    if completion.finish_reason == "error":
        return None
    text = completion.text
    if THINK_CLOSE in text:
        text = text.rsplit(THINK_CLOSE, 1)[1]
    elif "<think>" in text:
        return None  # cut off while thinking: no reply
    return text.strip() or None


def build_persona_set(backend: Backend, config: PersonaSetConfig, *, cache: ResultCache | None = None,
                      questions: Sequence[str] | None = None, questions_version: str | None = None,
                      progress: Callable[[str, int], Callable[[int], None]] | None = None) -> PersonaSet:
    """Write every reply (cached) and pair them into users, dimension by dimension."""
    if config.history < 1 or config.users_per_pole < 1:
        raise InputError("history and users_per_pole must be positive", field="history")
    version, all_dims = load_dimensions()
    dims = select_dimensions(all_dims, config.dimensions)
    if questions is None:
        questions_version, questions = load_questions()
    chosen = _sample_questions(list(questions), config.questions, config.seed)
    if len(chosen) < config.history + 1:
        raise InputError(f"{len(chosen)} questions cannot give a user {config.history} pairs and a target",
                         field="questions")
    sampling = Sampling(max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed)
    calls = CachedCalls(backend, cache, version)
    users: dict[str, list[dict[str, Any]]] = {}
    report: dict[str, Any] = {}
    for dim in dims:
        replies = {pole.name: _replies(calls, pole, chosen, sampling, config.batch,
                                       progress(f"{dim.name}: {pole.name}", len(chosen)) if progress else None)
                   for pole in dim.poles}
        users[dim.name], report[dim.name] = _users(dim, chosen, replies, config)
    manifest = {"format": "P-Soups (AlignX redistribution): read with `prefscribe eval --benchmark psoups`",
                "dimensions_version": version, "questions_version": questions_version or "custom",
                "model": backend.info.spec, "seed": config.seed, "questions": len(chosen),
                "users_per_pole": config.users_per_pole, "history": config.history,
                "sampling": dict(sampling.__dict__), "dimensions": report}
    return PersonaSet(users=users, manifest=manifest)


def _sample_questions(questions: list[str], n: int | None, seed: int) -> list[str]:
    if n is None or n >= len(questions):
        return questions
    if n < 1:
        raise InputError(f"questions must be positive, got {n}", field="questions")
    keep = set(random.Random(f"personaset-questions-{seed}").sample(range(len(questions)), n))
    return [q for i, q in enumerate(questions) if i in keep]  # in file order: the cache keys do not depend on it


def _replies(calls: CachedCalls, pole: Pole, questions: list[str], sampling: Sampling, batch: int,
             advance: Callable[[int], None] | None) -> list[Completion]:
    out: list[Completion] = []
    for start in range(0, len(questions), max(1, batch)):
        part = [reply_messages(pole, q) for q in questions[start:start + batch]]
        out.extend(calls.generate(part, sampling, role=ROLE))
        if advance:
            advance(len(part))
    return out


def _users(dim: Dimension, questions: list[str], replies: dict[str, list[Completion]],
           config: PersonaSetConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Users of both poles; a question is usable when both poles replied, differently."""
    first, second = dim.poles
    texts = {p.name: [reply_text(c) for c in replies[p.name]] for p in dim.poles}
    usable = [i for i in range(len(questions))
              if texts[first.name][i] and texts[second.name][i]
              and _key(texts[first.name][i]) != _key(texts[second.name][i])]
    if len(usable) < config.history + 1:
        raise InputError(f"{dim.name}: only {len(usable)} questions got two different replies; {config.history + 1} "
                         "are needed (more questions, or a model that follows the instructions)",
                         field="questions")
    users = []
    for pole, other in ((first, second), (second, first)):
        for k in range(config.users_per_pole):
            rng = random.Random(f"personaset-{config.seed}-{dim.name}-{pole.name}-{k}")
            users.append(_user(dim, pole, other, k, usable, questions, texts, config.history, rng))
    random.Random(f"personaset-order-{config.seed}-{dim.name}").shuffle(users)  # not sorted by persona
    report = {"poles": [p.name for p in dim.poles], "users": len(users), "usable_questions": len(usable),
              "unusable_questions": len(questions) - len(usable),
              "truncated_replies": sum(c.finish_reason == "length" for p in dim.poles for c in replies[p.name])}
    return users, report


def _user(dim: Dimension, pole: Pole, other: Pole, k: int, usable: list[int], questions: list[str],
          texts: dict[str, list[str | None]], history: int, rng: random.Random) -> dict[str, Any]:
    def pair(i: int) -> dict[str, str]:
        return {"prompt": questions[i], "chosen": texts[pole.name][i], "rejected": texts[other.name][i]}

    target = rng.choice(usable)
    taken = {_key(texts[pole.name][target]), _key(texts[other.name][target])}
    # A reply repeated under another question would put a target item in the history: such questions wait.
    pool = [i for i in usable if i != target and not {_key(texts[pole.name][i]), _key(texts[other.name][i])} & taken]
    if len(pool) < history:
        raise InputError(f"{dim.name}: too few distinct replies for a user of {history} pairs", field="questions")
    return {**pair(target), HISTORY_FIELD: [pair(i) for i in rng.sample(pool, history)],
            "ground_truth_persona": pole.persona,
            "profile": f"{dim.name}: {pole.name} (user {k}; the other pole is {other.name})"}


def _key(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()
