"""Domain-Specific Preference (DSP): each query answered five ways, users built from the reply styles.

The file is a JSON array of `{"query", "responses": {"academy", "business", "entertainment", "literature",
"normal"}}` (ChatGPT under a domain system prompt; `normal` has none). It has no users, so the loader makes them:

- a user's **persona** is one of the four domain styles; the gold preference is our one-line description of
  that style's replies (`dsp_personas.json`, versioned; the version is in every record's meta);
- each **history pair** is a query with the persona's reply chosen and another style's reply rejected, the
  rejected style drawn with the user's seeded generator from the other four (`normal` included);
- the **target** is a pair of the same kind on a query the user's history does not use.

Per persona the usable queries are shuffled with the seed and cut into consecutive groups of `history + 1`
(target first), so a query is never in both a user's history and target, and each persona has
`usable // (history + 1)` users (131 each on the 661-query test split with the default 4 pairs). A query is
unusable for a persona when its reply in that style is blank or no other style replied differently (short
answers repeat across styles); the counts are in meta. Replies that repeat across queries can still put a
target item in the history: those pairs are dropped and counted (`dropped_target_duplicates`), as in every
loader. Long replies are kept whole here; every prompt clips an item to `prompts.templates.MAX_ITEM_CHARS`.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._io import field, read_json, text_field
from ._leakage import drop_target_items, item_key
from ._sampling import sample_records, user_rng

FILE_NAME = "domain_specific_preference.test.json"
PERSONAS = ("academy", "business", "entertainment", "literature")
STYLES = (*PERSONAS, "normal")


def dsp_personas() -> tuple[str, dict[str, str]]:
    """The persona file's version and its one line per style."""
    data = json.loads(resources.files(__package__).joinpath("dsp_personas.json").read_text(encoding="utf-8"))
    return data["version"], data["personas"]


def load_dsp(path: str | Path, *, limit: int | None = None, seed: int = 0, history: int = 4) -> list[UserRecord]:
    """`path` is the DSP folder or the JSON file itself; `history` pairs per user (plus one target)."""
    if not isinstance(history, int) or history < 1:
        raise InputError(f"history must be a positive integer, got {history!r}", field="history")
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    queries = _read(path)
    version, personas = dsp_personas()
    records: list[UserRecord] = []
    for persona in PERSONAS:
        usable = [q for q in range(len(queries)) if _rivals(queries[q], persona)]
        order = user_rng(seed, "dsp", persona, "queries")
        order.shuffle(usable)
        group = history + 1
        for k in range(len(usable) // group):
            chunk = usable[k * group:(k + 1) * group]
            records.append(_record(queries, persona, k, chunk, personas[persona], path, seed, {
                "persona_version": version, "usable_queries": len(usable),
                "unusable_queries": len(queries) - len(usable)}))
    if not records:
        raise InputError(f"too few usable queries for one user of {history} pairs and a target", path=str(path))
    return sample_records(records, limit, seed, stratified_by="meta.stratum")


def _read(path: Path) -> list[tuple[str, dict[str, str]]]:
    """(query, replies by style) per element; blank replies are kept as "" (they are skipped, not errors)."""
    data = read_json(path, "the DSP JSON array")
    if not isinstance(data, list) or not data:
        raise InputError("expected a non-empty JSON array of {query, responses}", path=str(path))
    out = []
    for index, obj in enumerate(data):
        where = f"[{index}]."
        if not isinstance(obj, dict):
            raise InputError(f"expected an object, found {type(obj).__name__}", path=str(path), field=f"[{index}]")
        query = text_field(obj, "query", path=path, line=None, prefix=where)
        responses = field(obj, "responses", dict, path=path, line=None, prefix=where)
        replies = {}
        for style in STYLES:
            replies[style] = field(responses, style, str, path=path, line=None, prefix=f"{where}responses.")
        out.append((query, replies))
    return out


def _rivals(query: tuple[str, dict[str, str]], persona: str) -> list[str]:
    """The styles whose reply can be rejected against the persona's: non-blank and different from it."""
    replies = query[1]
    own = replies[persona]
    if not own.strip():
        return []
    return [s for s in STYLES if s != persona and replies[s].strip() and item_key(replies[s]) != item_key(own)]


def _pair(query: tuple[str, dict[str, str]], persona: str, rng: random.Random) -> tuple[str, str, str]:
    """(chosen, rejected, the rejected style): the rival style drawn with the user's generator."""
    rejected_style = rng.choice(_rivals(query, persona))
    return query[1][persona], query[1][rejected_style], rejected_style


def _record(queries: list[tuple[str, dict[str, str]]], persona: str, k: int, chunk: list[int], gold: str,
            path: Path, seed: int, info: dict[str, Any]) -> UserRecord:
    user_id = f"dsp_{persona}_{k}"
    rng = user_rng(seed, "dsp", user_id)
    target_index, *history_indices = chunk
    chosen, rejected, target_rejected = _pair(queries[target_index], persona, rng)
    target = Target(context=queries[target_index][0], chosen=chosen, rejected=rejected)
    history = []
    for position, q in enumerate(history_indices):
        chosen, rejected, style = _pair(queries[q], persona, rng)
        history.append(Interaction(context=queries[q][0], chosen=chosen, rejected=rejected, domain="dsp",
                                   meta={"position": position, "query_index": q, "rejected_style": style}))
    history, dropped = drop_target_items(history, target)
    meta = {"benchmark": "dsp", "source": str(path), "seed": seed, "persona": persona, "stratum": persona,
            "target_query_index": target_index, "target_rejected_style": target_rejected,
            "dropped_target_duplicates": dropped, **info}
    return UserRecord(user_id=user_id, history=history, target=target, gold_preference=gold, meta=meta)
