"""Amazon reviews in RecBole atomic files (as LLMRank ships Games-6k): `.inter`, `.item`, `.random`.

Files (tab-separated, header cells `name:type`):
- `.inter`, either the sequential split LLMRank ships (`user_id`, chronological `item_id_list`, held-out
  next `item_id`) or one interaction per row (`user_id`, `item_id`, optional `timestamp`, `rating`).
- `.item`: `item_id` and the item's fields, typed in the header as RecBole declares them (`name:token`,
  `name:token_seq`, `name:float`, `name:float_seq`). The item text is the `text_field` option, by default the
  first declared of `title`, `movie_title`, `item_name`, `name`; `item_fields` adds other fields the way the
  MovieLens loader does: a year in parentheses, the rest after a dash, sequences as lists
  ("Toy Story (1995) — genre: Animation, Children's, Comedy"). `item_fields="auto"` (default) takes the
  descriptive fields a RecBole item file usually has (year, genre, class, categories, brand), "none" the text
  alone, or a comma list names them. Vectors (`float_seq`) are never text.
- `.random` (optional): `user<TAB>candidate candidate ...`, random candidates per evaluation user.

How the pairs are built:
- **target**: chosen = the held-out next item (sequential file), or the user's last item in time
  (per-row file: items sharing its timestamp are excluded from the history, like MovieLens);
  rejected = one of the user's `.random` candidates, drawn with the user's seeded generator.
- **history**: the items before it, oldest first, the `max_history` most recent kept, each paired with
  another of the user's candidates (without replacement). Every interaction counts as positive, rating
  or not: a review means a purchase, which is the paper's Amazon signal.
- LLMRank draws `.random` candidates uniformly from all items **without** removing the user's own
  (its sample_candidates.py): in Games-6k they hit 297 users' histories and 33 users' targets. Such
  candidates, and any whose title equals a history or target title, are removed first (counted in
  `meta["candidates_removed"]`). When a user's candidates run out, or for users absent from `.random`,
  the rejected item is drawn from the whole `.item` catalogue among items the user never interacted with
  (`rejected_source` in each interaction's meta says which).
- `users="candidates"` (default when a `.random` file is found) keeps only the users listed there,
  LLMRank's evaluation users; `users="all"` keeps every user of the `.inter` file.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._io import read_text, require_file
from ._leakage import drop_target_items, item_key
from ._sampling import choose, stamp, user_rng
from ._tags import clean_tags, era, year_of


@dataclass(frozen=True)
class UserSequence:
    user: str
    history: list[str]  # item ids, oldest first
    target: str
    line: int
    excluded_same_time: int = 0


@dataclass(frozen=True)
class Column:
    """One header cell of a RecBole atomic file: `name:type`."""

    name: str
    type: str


FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
TEXT_FIELDS = ("title", "movie_title", "item_name", "name")  # the item text, when the option does not say
DESCRIPTIVE = ("release_year", "year", "genre", "genres", "class", "categories", "category", "brand")
TAG_FIELDS = ("genre", "genres", "class", "categories", "category", "brand")  # their values are tags (_tags.py)


@dataclass(frozen=True)
class AtomicFiles:
    inter: Path
    item: Path
    random: Path | None


def load_amazon(path: str | Path, *, limit: int | None = None, seed: int = 0, max_history: int = 50,
                users: Literal["candidates", "all"] | None = None, item_file: str | Path | None = None,
                candidates_file: str | Path | None = None, text_field: str | None = None,
                item_fields: str | Sequence[str] = "auto") -> list[UserRecord]:
    """`path` is a RecBole dataset folder (the `*.test.inter` in it is used) or an `.inter` file."""
    if max_history < 1:
        raise InputError("max_history must be >= 1", field="max_history")
    files = locate(Path(path), item_file, candidates_file)
    titles, rendering, tags = read_items(files.item, text_field, item_fields)
    sequences = read_inter(files.inter, titles)
    candidates = read_candidates(files.random) if files.random else {}
    users = users or ("candidates" if candidates else "all")
    if users not in ("candidates", "all"):
        raise InputError(f"users must be 'candidates' or 'all', got {users!r}", field="users")
    if users == "candidates":
        if not candidates:
            raise InputError("users='candidates' needs a .random candidates file", field="users")
        missing = [u for u in candidates if u not in sequences]
        if missing:
            raise InputError(f"{len(missing)} candidate user(s) have no row in {files.inter.name}, e.g. "
                             f"{missing[0]!r}", path=str(files.random), field="user_id")
        chosen_users = list(candidates)
    else:
        chosen_users = list(sequences)
    keys = {item: item_key(title) for item, title in titles.items()}  # once, not per candidate per user
    catalogue = list(titles)
    if not chosen_users:
        raise InputError("no users in the file", path=str(files.inter))
    # Draw `limit` among user ids before building records: 50k records to keep 100 is seconds wasted,
    # and each user's own generator makes the result identical either way.
    picked, info = choose(chosen_users, limit, seed)
    records = [_record(sequences[u], titles, tags, keys, catalogue, candidates.get(u), seed, max_history, files,
                       users) for u in picked]
    for record in records:
        record.meta["item_text"] = rendering
    stamp(records, seed, {**info, "stratified_by": "none"})
    return records


def locate(path: Path, item_file: str | Path | None, candidates_file: str | Path | None) -> AtomicFiles:
    if path.is_dir():
        found = sorted(path.glob("*.test.inter")) or sorted(path.glob("*.inter"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise InputError(f"expected one *.test.inter (or one *.inter) file, found {names}; pass the "
                             ".inter file itself", path=str(path))
        inter = found[0]
    else:
        inter = require_file(path, "a RecBole .inter file")
        if not inter.name.endswith(".inter"):
            raise InputError("expected a RecBole .inter file (name ending in .inter)", path=str(path))
    dataset = inter.name.split(".")[0]  # Games-6k.test.inter -> Games-6k
    item = Path(item_file) if item_file else inter.with_name(f"{dataset}.item")
    require_file(item, "the RecBole .item file with titles")
    if candidates_file:
        rand: Path | None = require_file(Path(candidates_file), "the .random candidates file")
    else:
        rand = inter.with_name(f"{dataset}.random")
        rand = rand if rand.is_file() else None
    return AtomicFiles(inter, item, rand)


def atomic_rows(path: Path, what: str) -> tuple[list[Column], list[tuple[int, list[str]]]]:
    """Typed header cells and tab-split rows. Not the csv module: titles hold bare quotes."""
    lines = read_text(path, what).split("\n")
    columns = [_column(cell, path) for cell in lines[0].rstrip("\r").split("\t")]
    header = [c.name for c in columns]
    rows = []
    for number, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip("\r")
        if not raw.strip():
            continue
        cells = raw.split("\t")
        if len(cells) != len(header):
            raise InputError(f"{len(cells)} tab-separated cells for {len(header)} columns "
                             f"({', '.join(header)})", path=str(path), line=number)
        rows.append((number, cells))
    return columns, rows


def _column(cell: str, path: Path) -> Column:
    name, sep, kind = cell.strip().partition(":")
    if not sep or not name or kind not in FIELD_TYPES:
        raise InputError(f"header cell {cell!r}: RecBole declares each field as name:type, the type one of "
                         f"{', '.join(FIELD_TYPES)}", path=str(path), line=1, field=name or cell)
    return Column(name, kind)


def _index(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise InputError(f"missing column {name}; found {', '.join(header)}", path=str(path), line=1,
                         field=name)
    return header.index(name)


def read_items(path: Path, text_field: str | None = None, item_fields: str | Sequence[str] = "auto"
               ) -> tuple[dict[str, str], dict[str, Any], dict[str, list[str]]]:
    """Item id -> item text; how the text was made ({"text_field", "item_fields"}, for the records' meta); item
    id -> its tags (the values of its genre, class, category and brand fields, and its decade)."""
    columns, rows = atomic_rows(path, "the RecBole .item file")
    header = [c.name for c in columns]
    id_col = _index(header, "item_id", path)
    title_col = _text_column(columns, text_field, path)
    extra_cols = _extra_columns(columns, item_fields, {id_col, title_col}, path)
    title_name = columns[title_col].name
    titles: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    for number, cells in rows:
        item, title = cells[id_col].strip(), cells[title_col].strip()
        if not title:
            raise InputError(f"item {item} has no {title_name}", path=str(path), line=number, field=title_name)
        if item in titles:
            raise InputError(f"item {item} listed twice", path=str(path), line=number, field="item_id")
        extras = [(columns[i], cells[i].strip()) for i in extra_cols]
        titles[item] = render_item(title, extras)
        tags[item] = _tags(title, extras)
    return titles, {"text_field": title_name, "item_fields": [columns[i].name for i in extra_cols]}, tags


def _tags(title: str, extras: Sequence[tuple[Column, str]]) -> list[str]:
    year = next((value for column, value in extras if "year" in column.name and value), None) or year_of(title)
    values = [v for column, value in extras if column.name in TAG_FIELDS
              for v in (value.split() if column.type == "token_seq" else [value])]
    return clean_tags([*values, era(year)])


def _text_column(columns: list[Column], text_field: str | None, path: Path) -> int:
    texts = {c.name: i for i, c in enumerate(columns) if c.type in ("token", "token_seq")}
    if text_field is not None:
        if text_field not in texts:
            declared = ", ".join(f"{c.name}:{c.type}" for c in columns)
            raise InputError(f"text_field {text_field!r} is not a token or token_seq field of the item file "
                             f"(it declares {declared})", path=str(path), line=1, field=text_field)
        return texts[text_field]
    for name in TEXT_FIELDS:
        if name in texts:
            return texts[name]
    raise InputError(f"no item text field: none of {', '.join(TEXT_FIELDS)} is declared; name one with the "
                     f"text_field option (e.g. --loader-option text_field=<name>)", path=str(path), line=1)


def _extra_columns(columns: list[Column], item_fields: str | Sequence[str], taken: set[int],
                   path: Path) -> list[int]:
    by_name = {c.name: i for i, c in enumerate(columns)}
    if isinstance(item_fields, str):
        if item_fields == "auto":
            return [by_name[n] for n in DESCRIPTIVE if n in by_name and by_name[n] not in taken
                    and columns[by_name[n]].type != "float_seq"]
        if item_fields == "none":
            return []
        item_fields = [f.strip() for f in item_fields.split(",") if f.strip()]
    out = []
    for name in item_fields:
        if name not in by_name:
            raise InputError(f"item_fields names {name!r}, which the item file does not declare (it has "
                             f"{', '.join(by_name)})", path=str(path), line=1, field=name)
        if columns[by_name[name]].type == "float_seq":
            raise InputError(f"{name} is a float_seq (a vector), not text", path=str(path), line=1, field=name)
        if by_name[name] not in taken:
            out.append(by_name[name])
    return out


def render_item(text: str, extras: Sequence[tuple[Column, str]]) -> str:
    """The item text and its extra fields, as the MovieLens loader writes a movie: "Title (Year) — ..."."""
    year = next((value for column, value in extras if "year" in column.name and value), None)
    if year and f"({year})" not in text:
        text = f"{text} ({year})"
    rest = [f"{column.name}: {_value(column, value)}" for column, value in extras
            if value and "year" not in column.name]
    return f"{text} — {'; '.join(rest)}" if rest else text


def _value(column: Column, value: str) -> str:
    # RecBole separates the tokens of a sequence by spaces: shown as a list.
    return ", ".join(value.split()) if column.type == "token_seq" else value


def read_inter(path: Path, titles: dict[str, str]) -> dict[str, UserSequence]:
    columns, rows = atomic_rows(path, "the RecBole .inter file")
    header = [c.name for c in columns]
    user_col, item_col = _index(header, "user_id", path), _index(header, "item_id", path)

    def known(item: str, number: int, field: str) -> str:
        if item not in titles:
            raise InputError(f"item {item!r} is not in the .item file", path=str(path), line=number,
                             field=field)
        return item

    sequences: dict[str, UserSequence] = {}
    if "item_id_list" in header:  # sequential split: one row per user
        list_col = header.index("item_id_list")
        for number, cells in rows:
            user = cells[user_col].strip()
            if user in sequences:
                raise InputError(f"user {user} has two rows", path=str(path), line=number, field="user_id")
            history = cells[list_col].split()
            if not titles.keys() >= set(history):  # the set test is fast; find the culprit only on failure
                [known(i, number, "item_id_list") for i in history]
            sequences[user] = UserSequence(user, history, known(cells[item_col].strip(), number, "item_id"),
                                           number)
        return sequences
    # One interaction per row: order each user's items by time (file order when there is no timestamp).
    time_col = header.index("timestamp") if "timestamp" in header else None
    events: dict[str, list[tuple[float, int, str]]] = {}
    for number, cells in rows:
        when = float(number)
        if time_col is not None:
            try:
                when = float(cells[time_col])
            except ValueError:
                raise InputError(f"expected a number, found {cells[time_col]!r}", path=str(path), line=number,
                                 field="timestamp") from None
        events.setdefault(cells[user_col].strip(), []).append(
            (when, number, known(cells[item_col].strip(), number, "item_id")))
    for user, items in events.items():
        items.sort()
        last_time, last_line, target = items[-1]
        earlier = [i for t, _, i in items if t < last_time]
        sequences[user] = UserSequence(user, earlier, target, last_line,
                                       excluded_same_time=len(items) - 1 - len(earlier))
    return sequences


def read_candidates(path: Path) -> dict[str, list[str]]:
    candidates: dict[str, list[str]] = {}
    for number, raw in enumerate(read_text(path, "the .random candidates file").split("\n"), start=1):
        if not raw.strip():
            continue
        user, sep, items = raw.rstrip("\r").partition("\t")
        if not sep or not items.split():
            raise InputError("expected 'user<TAB>item item ...'", path=str(path), line=number)
        if user in candidates:
            raise InputError(f"user {user} listed twice", path=str(path), line=number, field="user_id")
        candidates[user] = items.split()
    return candidates


def _record(seq: UserSequence, titles: dict[str, str], tags: dict[str, list[str]], keys: dict[str, str],
            catalogue: list[str], user_candidates: list[str] | None, seed: int, max_history: int,
            files: AtomicFiles, users: str) -> UserRecord:
    rng = user_rng(seed, "amazon", seq.user)
    history_ids = seq.history[-max_history:]
    own = set(seq.history) | {seq.target}
    own_titles = {keys[i] for i in own}
    pool: list[str] = []
    removed = 0
    for item in user_candidates or []:
        if item not in keys or item in own or keys[item] in own_titles:
            removed += 1
        else:
            pool.append(item)
    draw = _Drawer(pool, rng, keys, catalogue, own, own_titles)
    target_neg, target_src = draw()
    history = []
    for position, item in enumerate(history_ids):
        neg, src = draw()
        history.append(Interaction(chosen=titles[item], rejected=titles[neg], id=item, domain="amazon",
                                   meta={"position": position, "rejected_id": neg, "rejected_source": src,
                                         **({"tags": tags[item]} if tags[item] else {}),
                                         **({"rejected_tags": tags[neg]} if tags[neg] else {})}))
    target = Target(chosen=titles[seq.target], rejected=titles[target_neg])
    history, dup = drop_target_items(history, target)
    meta: dict[str, Any] = {
        "benchmark": "amazon", "source": str(files.inter), "line": seq.line, "seed": seed,
        "users": users, "max_history": max_history, "history_available": len(seq.history),
        "candidates_file": str(files.random) if files.random else None,
        "candidates_removed": removed, "dropped_target_duplicates": dup,
        "target": {"item_id": seq.target, "rejected_id": target_neg, "rejected_source": target_src}}
    if seq.excluded_same_time:
        meta["excluded_same_timestamp"] = seq.excluded_same_time
    return UserRecord(user_id=seq.user, history=history, target=target, meta=meta)


class _Drawer:
    """Rejected items for one user: their candidates drawn at random without replacement, then unseen
    catalogue items. Draws pop a random slot rather than shuffling all 100 candidates up front: a user
    needs only len(history) + 1 of them."""

    def __init__(self, pool: list[str], rng: random.Random, keys: dict[str, str], catalogue: list[str],
                 own: set[str], own_titles: set[str]) -> None:
        self.pool, self.rng, self.keys, self.catalogue = pool, rng, keys, catalogue
        self.used, self.used_titles = set(own), set(own_titles)

    def __call__(self) -> tuple[str, str]:
        while self.pool:
            slot = self.rng.randrange(len(self.pool))
            self.pool[slot], self.pool[-1] = self.pool[-1], self.pool[slot]
            item = self.pool.pop()
            if self._claim(item):
                return item, "candidates file"
        for _ in range(100 * len(self.catalogue)):
            item = self.rng.choice(self.catalogue)
            if self._claim(item):
                return item, "catalogue (never interacted)"
        raise InputError("the catalogue has no unused item left to use as a rejected item")

    def _claim(self, item: str) -> bool:
        key = self.keys[item]
        if item in self.used or key in self.used_titles:
            return False
        self.used.add(item)
        self.used_titles.add(key)
        return True
