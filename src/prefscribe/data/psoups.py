"""P-Soups as redistributed by AlignX: one JSON array, one user per element.

    {"prompt", "chosen", "rejected",                       <- the held-out target
     "Pair-wise Comparative Feedback": [{"prompt", "chosen", "rejected"}, ...],   <- the history
     "ground_truth_persona": "...",                       <- the gold preference
     "profile": "..."}                                     <- kept in meta

Trap: the file is sorted by persona (users 0-299 one, 300-599 the other), so `limit` never takes the
first users: it samples with the seed, stratified by persona (see `_sampling.sample_records`).
Three users of student_phd.json repeat their target inside their own history (user 300 the whole pair,
users 309 and 310 its prompt and chosen answer); those history pairs are dropped and counted in
`meta["dropped_target_duplicates"]`, leaving them 3 history pairs instead of 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._io import field, read_json, text_field
from ._leakage import drop_target_items
from ._sampling import sample_records

HISTORY_FIELD = "Pair-wise Comparative Feedback"


def load_psoups(path: str | Path, *, limit: int | None = None, seed: int = 0) -> list[UserRecord]:
    """Read a P-Soups/AlignX JSON array; user ids are `<file stem>_<index>` as in the reference."""
    path = Path(path)
    data = read_json(path, "a P-Soups JSON array")
    if not isinstance(data, list):
        raise InputError(f"expected a JSON array of users, found {type(data).__name__}", path=str(path))
    if not data:
        raise InputError("no users in the file", path=str(path))
    records = [_record(obj, index, path, seed) for index, obj in enumerate(data)]
    for record in records:  # the persona is the stratum, even when every user is kept
        record.meta["stratum"] = record.gold_preference
    return sample_records(records, limit, seed, stratified_by="meta.stratum")


def _record(obj: Any, index: int, path: Path, seed: int) -> UserRecord:
    # A JSON array has no useful line numbers; the element index names the user instead.
    where = f"[{index}]."
    if not isinstance(obj, dict):
        raise InputError(f"expected a user object, found {type(obj).__name__}", path=str(path),
                         field=f"[{index}]")
    target = Target(context=text_field(obj, "prompt", path=path, line=None, prefix=where),
                    chosen=text_field(obj, "chosen", path=path, line=None, prefix=where),
                    rejected=text_field(obj, "rejected", path=path, line=None, prefix=where))
    history = []
    for k, pair in enumerate(field(obj, HISTORY_FIELD, list, path=path, line=None, prefix=where)):
        prefix = f"{where}{HISTORY_FIELD}[{k}]."
        if not isinstance(pair, dict):
            raise InputError(f"expected a pair object, found {type(pair).__name__}", path=str(path),
                             field=prefix.rstrip("."))
        history.append(Interaction(context=text_field(pair, "prompt", path=path, line=None, prefix=prefix),
                                   chosen=text_field(pair, "chosen", path=path, line=None, prefix=prefix),
                                   rejected=text_field(pair, "rejected", path=path, line=None, prefix=prefix),
                                   domain="psoups", meta={"position": k}))
    history, dropped = drop_target_items(history, target)
    gold = text_field(obj, "ground_truth_persona", path=path, line=None, prefix=where)
    meta: dict[str, Any] = {"benchmark": "psoups", "source": str(path), "index": index, "seed": seed,
                            "dropped_target_duplicates": dropped}
    profile = field(obj, "profile", str, path=path, line=None, prefix=where, optional=True)
    if profile is not None:
        meta["profile"] = profile
    return UserRecord(user_id=f"{path.stem}_{index}", history=history, target=target, gold_preference=gold,
                      meta=meta)
