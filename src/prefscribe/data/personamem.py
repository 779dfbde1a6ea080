"""PersonaMem (v2 fields, as the paper uses them): one question per row.

Fields read: `user_query` (text, or a chat message `{"role", "content"}`), `correct_answer`,
`incorrect_answers` (a list), `related_conversation_snippet` (chat messages: the history). Optional:
`persona_id` and `preference` (the benchmark's own statement of the preference: the gold), plus the
descriptive columns listed in `_META_FIELDS`, copied to meta.

The files come as the benchmark's CSV (structured cells are JSON text), as JSONL, or as a JSON array;
all three are read. Target = (user_query, correct_answer, one incorrect answer drawn with the user's
seeded generator), as in the reference. The snippet becomes interactions as `_chat` documents; its
system messages (the generator's hidden persona) are dropped and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Target, UserRecord
from ._chat import chat_to_history, message_text
from ._io import embedded, read_rows, text_field
from ._leakage import drop_target_items, item_key
from ._sampling import sample_records, user_rng

_META_FIELDS = ("persona_id", "pref_type", "topic_query", "topic_preference", "conversation_scenario", "who",
                "updated", "sensitive_info")


def load_personamem(path: str | Path, *, limit: int | None = None, seed: int = 0) -> list[UserRecord]:
    """Read PersonaMem rows (.csv, .jsonl or .json); one record per question."""
    path = Path(path)
    rows = read_rows(path, "a PersonaMem file")
    if not rows:
        raise InputError("no rows in the file", path=str(path))
    records = [_record(row, number, index, path, seed) for index, (number, row) in enumerate(rows)]
    return sample_records(records, limit, seed)


def _record(row: dict[str, Any], line: int, index: int, path: Path, seed: int) -> UserRecord:
    persona = row.get("persona_id")
    # Several questions share a persona: the row index keeps ids unique, the persona id keeps them readable.
    user_id = f"{persona}:{index}" if persona not in (None, "") else str(index)
    query = embedded(row.get("user_query"), path=path, line=line, field_name="user_query")
    if isinstance(query, dict):
        query = message_text(query.get("content"), path=path, line=line, where="user_query")
    if not isinstance(query, str) or not query.strip():
        raise InputError("missing or blank", path=str(path), line=line, field="user_query")
    correct = text_field(row, "correct_answer", path=path, line=line)
    wrong = embedded(row.get("incorrect_answers"), path=path, line=line, field_name="incorrect_answers")
    if not isinstance(wrong, list) or not wrong:
        raise InputError("expected a non-empty list of answers", path=str(path), line=line,
                         field="incorrect_answers")
    options = [w for w in wrong if isinstance(w, str) and w.strip() and item_key(w) != item_key(correct)]
    if not options:
        raise InputError("no incorrect answer that differs from the correct one", path=str(path), line=line,
                         field="incorrect_answers")
    rng = user_rng(seed, "personamem", user_id)
    rejected = rng.choice(options)
    target = Target(context=query, chosen=correct, rejected=rejected)
    snippet = embedded(row.get("related_conversation_snippet"), path=path, line=line,
                       field_name="related_conversation_snippet")
    if snippet is None:
        raise InputError("missing", path=str(path), line=line, field="related_conversation_snippet")
    chat = chat_to_history(snippet, path=path, line=line, field_name="related_conversation_snippet",
                           domain="personamem")
    history, dup = drop_target_items(chat.history, target)
    preference = row.get("preference")
    gold = preference if isinstance(preference, str) and preference.strip() else None
    meta: dict[str, Any] = {"benchmark": "personamem", "source": str(path), "line": line, "seed": seed,
                            **chat.meta(), "dropped_target_duplicates": dup,
                            "target_rejected_index": wrong.index(rejected)}
    meta.update({k: row[k] for k in _META_FIELDS if row.get(k) not in (None, "")})
    return UserRecord(user_id=user_id, history=history, target=target, gold_preference=gold, meta=meta)
