"""HiCUPID: QA rows of split `test_2` with `type == "persona"`, each joined to its dialogues.

QA row fields read: `type`, `dialogue_id` (one id or a list), `question`, `personalized_answer`,
`general_answer`, `metadata.persona.{relation, entity}`; optional `user_id`, `question_id`, `split`.
Dialogue row fields: `dialogue_id`, `turn_id`, `user`, `assistant`.

Per QA row: target = (question, personalized answer, general answer); history = the matching dialogues
in the order the row lists them, turns sorted by `turn_id`, flattened to user/assistant messages and
turned into interactions as `_chat` documents; gold = "The user {relation} {entity}.".
QA rows of other types or splits are not errors but are left out by design; their counts are in every
record's `meta["qa_rows_skipped"]`. A dialogue id that no dialogue row has is an error (the reference
counted it and went on, leaving users with a silently shorter history).
The paper scores HiCUPID as generation with the benchmark's own evaluation; the pair here serves the
selection protocol.

`path` is the QA file (.jsonl, .json, .csv or .parquet) with `dialogues=` the dialogue file, or a folder
holding both (a file with "qa" in its path and "test_2" in its name, and one with "dialogue" in its path
named test*).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Target, UserRecord
from ._chat import chat_to_history
from ._io import embedded, read_rows, text_field
from ._leakage import drop_target_items
from ._sampling import sample_records

_SUFFIXES = {".jsonl", ".json", ".csv", ".parquet"}
_DIALOGUE_SPLIT = re.compile(r"^test(?![_-]?\d)", re.IGNORECASE)  # test.jsonl, test-0000-of-0001; not test_2


def load_hicupid(path: str | Path, *, limit: int | None = None, seed: int = 0,
                 dialogues: str | Path | None = None, split: str = "test_2") -> list[UserRecord]:
    """Read HiCUPID persona questions with their dialogue histories (see the module doc)."""
    qa_path, dialogue_path = _locate(Path(path), dialogues)
    turns = read_dialogues(dialogue_path)
    records: list[UserRecord] = []
    skipped: Counter[str] = Counter()
    for index, (line, row) in enumerate(read_rows(qa_path, "the HiCUPID QA file")):
        row_split = row.get("split")
        if row_split not in (None, "") and row_split != split:
            skipped[f"split={row_split}"] += 1
            continue
        if row.get("type") != "persona":
            skipped[f"type={row.get('type')}"] += 1
            continue
        records.append(_record(row, line, index, qa_path, turns, dialogue_path))
    if not records:
        raise InputError(f"no QA row of type 'persona' in split {split!r} (skipped: {dict(skipped)})",
                         path=str(qa_path))
    for record in records:
        record.meta["seed"] = seed
        record.meta["qa_rows_skipped"] = dict(skipped)
    return sample_records(records, limit, seed)


def _locate(path: Path, dialogues: str | Path | None) -> tuple[Path, Path]:
    if not path.is_dir():
        if dialogues is None:
            raise InputError("pass dialogues= (the HiCUPID dialogue file) with a QA file, or give the folder "
                             "holding both", path=str(path))
        return path, Path(dialogues)
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in _SUFFIXES]
    rel = {p: p.relative_to(path).as_posix().lower() for p in files}
    qa = [p for p in files if "qa" in rel[p] and "test_2" in p.name.lower()]
    dial = [p for p in files if "dialogue" in rel[p] and _DIALOGUE_SPLIT.match(p.name)]
    if dialogues is not None:
        dial = [Path(dialogues)]
    if len(qa) != 1 or len(dial) != 1:
        raise InputError(f"expected one QA test_2 file and one dialogue test file, found QA: "
                         f"{[str(p) for p in qa] or 'none'}, dialogue: {[str(p) for p in dial] or 'none'}",
                         path=str(path))
    return qa[0], dial[0]


def read_dialogues(path: Path) -> dict[str, list[tuple[float, int, str, str]]]:
    """dialogue id -> [(turn_id, line, user text, assistant text)] sorted by turn."""
    turns: dict[str, list[tuple[float, int, str, str]]] = defaultdict(list)
    for line, row in read_rows(path, "the HiCUPID dialogue file"):
        if row.get("dialogue_id") in (None, ""):
            raise InputError("missing", path=str(path), line=line, field="dialogue_id")
        try:
            turn = float(row.get("turn_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"expected a number, found {row.get('turn_id')!r}", path=str(path), line=line,
                             field="turn_id") from None
        user = text_field(row, "user", path=path, line=line)
        assistant = text_field(row, "assistant", path=path, line=line)
        turns[str(row["dialogue_id"])].append((turn, line, user, assistant))
    if not turns:
        raise InputError("no dialogue rows in the file", path=str(path))
    for rows in turns.values():
        rows.sort()
    return turns


def gold_of(metadata: Any, *, path: Path, line: int) -> str:
    """'The user {relation} {entity}.' from `metadata.persona` (one persona, as the reference reads it)."""
    persona = metadata.get("persona") if isinstance(metadata, dict) else None
    if not isinstance(persona, dict) or not all(isinstance(persona.get(k), str)
                                                for k in ("relation", "entity")):
        raise InputError("expected an object with 'relation' and 'entity'", path=str(path), line=line,
                         field="metadata.persona")
    return f"The user {persona['relation']} {persona['entity']}."


def _record(row: dict[str, Any], line: int, index: int, path: Path,
            turns: dict[str, list[tuple[float, int, str, str]]], dialogue_path: Path) -> UserRecord:
    target = Target(context=text_field(row, "question", path=path, line=line),
                    chosen=text_field(row, "personalized_answer", path=path, line=line),
                    rejected=text_field(row, "general_answer", path=path, line=line))
    ids = embedded(row.get("dialogue_id"), path=path, line=line, field_name="dialogue_id")
    if ids in (None, "", []):
        raise InputError("missing", path=str(path), line=line, field="dialogue_id")
    ids = [str(i) for i in (ids if isinstance(ids, list) else [ids])]
    messages: list[dict[str, str]] = []
    for did in ids:
        if did not in turns:
            raise InputError(f"dialogue {did!r} is not in {dialogue_path}", path=str(path), line=line,
                             field="dialogue_id")
        for _, _, user, assistant in turns[did]:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    chat = chat_to_history(messages, path=path, line=line, field_name="dialogue", domain="hicupid")
    history, dup = drop_target_items(chat.history, target)
    metadata = embedded(row.get("metadata"), path=path, line=line, field_name="metadata")
    user, question = row.get("user_id"), row.get("question_id")
    user_id = f"{user}:{question}" if user is not None and question is not None else f"qa{index}"
    meta: dict[str, Any] = {"benchmark": "hicupid", "source": str(path), "line": line, "dialogue_ids": ids,
                            **chat.meta(), "dropped_target_duplicates": dup}
    for key in ("user_id", "question_id", "n_hop"):
        if row.get(key) is not None:
            meta[key] = row[key]
    return UserRecord(user_id=user_id, history=history, target=target,
                      gold_preference=gold_of(metadata, path=path, line=line), meta=meta)
