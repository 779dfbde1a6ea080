"""MIND impressions with titles (the LLM4Rec CSV export): one row = one impression = one user.

Columns read: `impression_id`, `history` ("H1: title\\nH2: ..."), `candidate` ("C1: title\\n..."),
`label` (clicked candidates: "C5" or "C13,C14"); when present, `history_news_id` / `candidate_news_id`
and the `*_category` / `*_subvert` columns go into each interaction's meta.

How the pairs are built:
- **target**: chosen = a clicked candidate, rejected = a non-clicked candidate of the same impression
  (each drawn by the user's seeded generator when there are several).
- **history**: the clicked history titles, oldest first, as chosen items. MIND logs no "rejected" for
  past clicks, so with `history_negatives="impression"` (default) the remaining non-clicked candidates of
  the impression serve as rejected items, drawn without replacement and attached to randomly chosen
  history positions (seeded). There are at most 8 such candidates (10 shown, one clicked, one used by
  the target), so longer histories stay positive-only (`rejected=None`) at the other positions.
  Those candidates were shown at the target's time, after the history clicks: the pairing borrows a
  later negative, as the paper's MIND recipe does. `history_negatives="none"` keeps the history
  positive-only.
- other clicked candidates of the impression are not put in the history: they happen with the target.
- no target title appears in the history (checked as text: MIND repeats titles under new ids).
- item text: the title; with `item_text="category"`, "Title — category, subcategory" (MovieLens's form), so a
  reader of "likes sports" can see which headline is sports, as a reader of the MSN page could.
Impressions where every candidate was clicked have no rejected item; they are left out and counted in
every record's `meta["users_dropped"]`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._io import read_csv
from ._leakage import drop_target_items, item_key
from ._sampling import sample_records, user_rng
from ._tags import clean_tags

_REQUIRED = ("impression_id", "history", "candidate", "label")
_LABEL = re.compile(r"^C(\d+)$")


def load_mind(path: str | Path, *, limit: int | None = None, seed: int = 0,
              history_negatives: Literal["impression", "none"] = "impression",
              item_text: Literal["title", "category"] = "title") -> list[UserRecord]:
    """Read the MIND impression CSV; see the module doc for how pairs are drawn and items shown."""
    if history_negatives not in ("impression", "none"):
        raise InputError(f"history_negatives must be 'impression' or 'none', got {history_negatives!r}",
                         field="history_negatives")
    if item_text not in ("title", "category"):
        raise InputError(f"item_text must be 'title' or 'category', got {item_text!r}", field="item_text")
    path = Path(path)
    records: list[UserRecord] = []
    all_clicked = 0
    for line, row in read_csv(path, _REQUIRED, "the MIND impressions CSV"):
        record = _record(row, line, path, seed, history_negatives, item_text == "category")
        if record is None:
            all_clicked += 1
        else:
            records.append(record)
    if not records:
        raise InputError("no impression with both a clicked and a non-clicked candidate", path=str(path))
    for record in records:
        record.meta["users_dropped"] = {"all_candidates_clicked": all_clicked}
    return sample_records(records, limit, seed)


def numbered_titles(text: str, letter: str, *, path: Path, line: int, name: str) -> list[str]:
    """'H1: a\\nH2: b' -> ['a', 'b'], insisting on the numbering so a title split by a stray newline
    is reported rather than read as two items."""
    titles = []
    for k, part in enumerate(text.split("\n"), start=1):
        prefix = f"{letter}{k}: "
        if not part.startswith(prefix):
            raise InputError(f"item {k} should start with '{prefix}', found {part[:40]!r}", path=str(path),
                             line=line, field=name)
        title = part[len(prefix):].strip()
        if not title:
            raise InputError(f"item {letter}{k} has no title", path=str(path), line=line, field=name)
        titles.append(title)
    return titles


def _column(row: dict[str, str], name: str, count: int, path: Path, line: int) -> list[str] | None:
    """An optional newline-joined side column, which must align with the titles when present."""
    if not row.get(name):
        return None
    values = row[name].split("\n")
    if len(values) != count:
        raise InputError(f"{len(values)} values for {count} titles", path=str(path), line=line, field=name)
    return values


def _record(row: dict[str, str], line: int, path: Path, seed: int,
            history_negatives: str, categories: bool) -> UserRecord | None:
    impression = row["impression_id"].strip()
    if not impression:
        raise InputError("is blank", path=str(path), line=line, field="impression_id")
    history_titles = numbered_titles(row["history"], "H", path=path, line=line, name="history")
    candidates = numbered_titles(row["candidate"], "C", path=path, line=line, name="candidate")
    clicked = _clicked(row["label"], len(candidates), path, line)
    non_clicked = [i for i in range(len(candidates)) if i not in clicked]
    if not non_clicked:
        return None
    side: dict[str, list[str] | None] = {}
    for kind, n in (("history", len(history_titles)), ("candidate", len(candidates))):
        for name in ("news_id", "category", "subvert"):
            side[f"{kind}_{name}"] = _column(row, f"{kind}_{name}", n, path, line)

    rng = user_rng(seed, "mind", impression)
    pick = rng.choice(sorted(clicked))
    neg = rng.choice(non_clicked)
    target = Target(chosen=candidates[pick], rejected=candidates[neg])
    used = {item_key(target.chosen), item_key(target.rejected)} | {item_key(t) for t in history_titles}
    spare = [i for i in non_clicked if i != neg and item_key(candidates[i]) not in used]
    rng.shuffle(spare)

    history = [Interaction(chosen=title, domain="mind", id=_at(side["history_news_id"], k),
                           meta=_drop_none({"position": k, "category": _at(side["history_category"], k),
                                            "subvert": _at(side["history_subvert"], k),
                                            "tags": clean_tags([_at(side["history_category"], k),
                                                           _at(side["history_subvert"], k)]) or None}))
               for k, title in enumerate(history_titles)]
    history, dup = drop_target_items(history, target)
    paired = 0
    if history_negatives == "impression" and spare:
        positions = sorted(rng.sample(range(len(history)), min(len(spare), len(history))))
        for position, cand in zip(positions, spare, strict=False):  # positions may be the fewer
            history[position] = history[position].model_copy(update={
                "rejected": candidates[cand],
                "meta": {**history[position].meta, "rejected_id": _at(side["candidate_news_id"], cand),
                         **_tagged("rejected_tags", [_at(side["candidate_category"], cand),
                                                     _at(side["candidate_subvert"], cand)]),
                         "rejected_source": "non-clicked candidate of the impression"}})
            paired += 1
    meta: dict[str, Any] = {
        "benchmark": "mind", "source": str(path), "line": line, "seed": seed, "impression_id": impression,
        "history_negatives": history_negatives, "history_paired": paired,
        "history_positive_only": len(history) - paired, "dropped_target_duplicates": dup,
        "target": _drop_none({"chosen_candidate": f"C{pick + 1}", "rejected_candidate": f"C{neg + 1}",
                              "chosen_id": _at(side["candidate_news_id"], pick),
                              "rejected_id": _at(side["candidate_news_id"], neg),
                              "clicked": [f"C{i + 1}" for i in sorted(clicked)]})}
    if categories:  # after the pairs are drawn and checked on titles: the same draws as with titles alone
        def tags(k: int) -> list[str]:
            return clean_tags([_at(side["candidate_category"], k), _at(side["candidate_subvert"], k)])

        target = Target(chosen=_shown(target.chosen, tags(pick)), rejected=_shown(target.rejected, tags(neg)))
        history = [h.model_copy(update={
            "chosen": _shown(h.chosen, h.meta.get("tags", [])),
            "rejected": h.rejected and _shown(h.rejected, h.meta.get("rejected_tags", []))}) for h in history]
    return UserRecord(user_id=impression, history=history, target=target, meta=meta)


def _shown(title: str, tags: list[str]) -> str:
    """A headline with its category and subcategory (its tags), as MovieLens shows a film with its genres."""
    return f"{title} — {', '.join(tags)}" if tags else title


def _clicked(label: str, count: int, path: Path, line: int) -> set[int]:
    clicked = set()
    for part in (p.strip() for p in label.split(",")):
        match = _LABEL.match(part)
        if not match:
            raise InputError(f"expected labels like 'C5' or 'C13,C14', found {label!r}", path=str(path),
                             line=line, field="label")
        index = int(match.group(1)) - 1
        if not 0 <= index < count:
            raise InputError(f"{part} is not one of the {count} candidates", path=str(path), line=line,
                             field="label")
        clicked.add(index)
    return clicked


def _at(values: list[str] | None, index: int) -> str | None:
    return values[index].strip() if values is not None else None


def _tagged(key: str, tags: list[str | None]) -> dict[str, list[str]]:
    found = clean_tags(tags)
    return {key: found} if found else {}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
