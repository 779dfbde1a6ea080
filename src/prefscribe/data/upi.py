"""The paper's unified evaluation files, `<name>_upi.jsonl`: one user per line.

    {"userid": ..., "history": [{"query": str|null, "chosen": str, "rejected": str|null}, ...],
     "target": {"query": ..., "chosen": ..., "rejected": ...}}

Variants the reference scripts really write, all read here:
- AlignX (and the P-Soups splits) add `ground_truth_persona`, the gold preference.
- personamem and hicupid give `history` as chat messages `{"role", "content"}`: converted as `_chat`
  documents (each user message is a chosen item, the assistant message before it its context).
- hicupid lines have no `userid` but `qa_index`, and the gold as `golden`.
- generation files give the target as `{"query", "answer"}`: no pair to judge, so `target` is None and
  the answer is kept in `meta["target_answer"]`.
- `rejected: "No negative sample."` is the reference's placeholder for a positive-only interaction and
  is read as None (counted in meta). `query: null` means a recommendation request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._chat import chat_to_history
from ._io import field, iter_jsonl, text_field
from ._leakage import drop_target_items
from ._sampling import sample_records

NO_NEGATIVE = "No negative sample."
_ID_FIELDS = ("userid", "user_id", "uid", "qa_index")
_GOLD_FIELDS = ("ground_truth_persona", "golden", "gold_preference")


def benchmark_name(path: Path) -> str:
    """`mind_upi.jsonl` -> `mind`; any other name is kept whole (minus its suffix)."""
    stem = path.name.removesuffix(".jsonl")
    return stem.removesuffix("_upi")


def load_upi(path: str | Path, *, limit: int | None = None, seed: int = 0) -> list[UserRecord]:
    """Read a `*_upi.jsonl` file into user records (see the module doc for the accepted variants)."""
    path = Path(path)
    name = benchmark_name(path)
    records = [_record(obj, line, path, name, seed) for line, obj in iter_jsonl(path, "a *_upi.jsonl file")]
    if not records:
        raise InputError("no users in the file", path=str(path))
    return sample_records(records, limit, seed)


def _record(obj: dict[str, Any], line: int, path: Path, name: str, seed: int) -> UserRecord:
    user_id, id_field = _user_id(obj, line)
    meta: dict[str, Any] = {"benchmark": name, "source": str(path), "line": line, "seed": seed,
                            "user_id_field": id_field}
    raw_history = field(obj, "history", list, path=path, line=line)
    if raw_history and all(isinstance(h, dict) and "role" in h for h in raw_history):
        chat = chat_to_history(raw_history, path=path, line=line, field_name="history", domain=name)
        history = chat.history
        meta.update(chat.meta())
    else:
        history, placeholders = _triples(raw_history, path, line, name)
        meta["history_format"] = "triples"
        meta["rejected_placeholders_read_as_none"] = placeholders
    target = _target(obj, path, line, meta)
    history, dropped = drop_target_items(history, target)
    meta["dropped_target_duplicates"] = dropped
    gold = next((obj[k] for k in _GOLD_FIELDS if isinstance(obj.get(k), str) and obj[k].strip()), None)
    for key in ("dialogue_id", "type"):  # hicupid provenance, useful to trace a record back
        if key in obj:
            meta[key] = obj[key]
    return UserRecord(user_id=user_id, history=history, target=target, gold_preference=gold, meta=meta)


def _user_id(obj: dict[str, Any], line: int) -> tuple[str, str]:
    for key in _ID_FIELDS:
        if obj.get(key) is not None:
            return str(obj[key]), key
    return f"line{line}", "(line number)"


def _triples(raw: list[Any], path: Path, line: int, domain: str) -> tuple[list[Interaction], int]:
    history: list[Interaction] = []
    placeholders = 0
    for index, item in enumerate(raw):
        prefix = f"history[{index}]."
        if not isinstance(item, dict):
            raise InputError(f"expected an interaction object, found {type(item).__name__}", path=str(path),
                             line=line, field=f"history[{index}]")
        if "role" in item:
            raise InputError("mixes chat messages and (query, chosen, rejected) triples", path=str(path),
                             line=line, field=f"history[{index}]")
        chosen = text_field(item, "chosen", path=path, line=line, prefix=prefix)
        rejected = text_field(item, "rejected", path=path, line=line, prefix=prefix, optional=True)
        if rejected is not None and rejected.strip() == NO_NEGATIVE:
            rejected, placeholders = None, placeholders + 1
        context = field(item, "query", str, path=path, line=line, prefix=prefix, optional=True)
        history.append(Interaction(context=context, chosen=chosen, rejected=rejected, domain=domain,
                                   meta={"position": index}))
    return history, placeholders


def _target(obj: dict[str, Any], path: Path, line: int, meta: dict[str, Any]) -> Target | None:
    raw = field(obj, "target", dict, path=path, line=line)
    query = field(raw, "query", str, path=path, line=line, prefix="target.", optional=True)
    if "chosen" not in raw and "answer" in raw:
        meta["target_answer"] = text_field(raw, "answer", path=path, line=line, prefix="target.")
        meta["target_query"] = query
        return None
    chosen = text_field(raw, "chosen", path=path, line=line, prefix="target.")
    rejected = text_field(raw, "rejected", path=path, line=line, prefix="target.")
    try:
        return Target(context=query, chosen=chosen, rejected=rejected)
    except ValidationError as exc:  # pragma: no cover - the checks above cover Target's fields
        raise InputError(str(exc), path=str(path), line=line, field="target") from None
