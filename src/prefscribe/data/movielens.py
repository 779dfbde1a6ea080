"""MovieLens (`ratings.csv` + `movies.csv`) as preference pairs, one record per user.

How the pairs are built (the paper's recipe, made explicit):
- item text: "Title (Year) — Genre, Genre" (movies.csv keeps the year inside the title).
- the **target** is the user's last positive (rating >= `positive_min`) in time; ties at that last
  second go to the later line of the file.
- the **history** is the user's positives rated *strictly before* the target. Ratings that share the
  target's timestamp are excluded, not ordered arbitrarily: bulk-rating sessions put dozens of movies
  in one second, and whichever came "first" is unknowable. Only the `max_history` most recent are kept.
- **rejected** items: with `negatives="low_rated"` (default) a movie the user rated <= `negative_max`
  strictly before the target, drawn without replacement, the target's first; once those run out, a
  movie the user never rated, drawn from the whole catalogue. `negatives="unseen"` uses only the latter
  (the paper's global sampling). Every draw comes from the user's own seeded generator and is recorded
  in the interaction's meta (`rejected_source`).
Users with no positive, or fewer than `min_history` history positives, are left out and counted in
every record's `meta["users_dropped"]`.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..schema import Interaction, Target, UserRecord
from ._io import read_csv
from ._leakage import drop_target_items, item_key
from ._sampling import sample_records, user_rng
from ._tags import clean_tags, era, year_of

log = logging.getLogger(__name__)

NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class Movie:
    movie_id: str
    text: str
    key: str  # the text as `_leakage.item_key` compares it, computed once
    tags: tuple[str, ...] = ()  # genres and decade, which measured profiles count


@dataclass(frozen=True)
class Rating:
    movie_id: str
    rating: float
    timestamp: int
    line: int  # file order breaks timestamp ties deterministically


def load_movielens(path: str | Path, *, limit: int | None = None, seed: int = 0, max_history: int = 50,
                   min_history: int = 1, positive_min: float = 4.0, negative_max: float = 2.0,
                   negatives: Literal["low_rated", "unseen"] = "low_rated") -> list[UserRecord]:
    """`path` is the folder holding ratings.csv and movies.csv, or ratings.csv itself."""
    if negatives not in ("low_rated", "unseen"):
        raise InputError(f"negatives must be 'low_rated' or 'unseen', got {negatives!r}", field="negatives")
    if max_history < 1 or min_history < 0:
        raise InputError("max_history must be >= 1 and min_history >= 0", field="max_history")
    ratings_path, movies_path = _paths(Path(path))
    movies = read_movies(movies_path)
    by_user = read_ratings(ratings_path, movies)
    catalogue = list(movies)
    records: list[UserRecord] = []
    dropped = {"no_positive": 0, "short_history": 0}
    settings = {"max_history": max_history, "min_history": min_history, "positive_min": positive_min,
                "negative_max": negative_max, "negatives": negatives}
    for user, ratings in by_user.items():
        record = _user_record(user, ratings, movies, catalogue, seed, settings, ratings_path)
        if isinstance(record, str):
            dropped[record] += 1
            continue
        records.append(record)
    if dropped["no_positive"] or dropped["short_history"]:
        log.info("movielens: left out %s", dropped)
    if not records:
        raise InputError(f"no user has a positive rating with history before it (left out: {dropped})",
                         path=str(ratings_path))
    for record in records:
        record.meta["users_dropped"] = dict(dropped)
    return sample_records(records, limit, seed)


def _paths(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path / "ratings.csv", path / "movies.csv"
    return path, path.with_name("movies.csv")


def read_movies(path: Path) -> dict[str, Movie]:
    movies: dict[str, Movie] = {}
    for line, row in read_csv(path, ("movieId", "title", "genres"), "MovieLens movies.csv"):
        movie_id, title = row["movieId"].strip(), row["title"].strip()
        if not movie_id:
            raise InputError("is blank", path=str(path), line=line, field="movieId")
        if not title:
            raise InputError("is blank", path=str(path), line=line, field="title")
        if movie_id in movies:
            raise InputError(f"movie {movie_id} listed twice", path=str(path), line=line, field="movieId")
        genres = [g for g in row["genres"].split("|") if g and g != NO_GENRES]
        text = f"{title} — {', '.join(genres)}" if genres else title
        tags = tuple(clean_tags([*genres, era(year_of(title))]))
        movies[movie_id] = Movie(movie_id, text, item_key(text), tags)
    return movies


def read_ratings(path: Path, movies: dict[str, Movie]) -> dict[str, list[Rating]]:
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for line, row in read_csv(path, ("userId", "movieId", "rating", "timestamp"), "MovieLens ratings.csv"):
        user, movie_id = row["userId"].strip(), row["movieId"].strip()
        if not user:
            raise InputError("is blank", path=str(path), line=line, field="userId")
        if movie_id not in movies:
            raise InputError(f"movie {movie_id!r} is not in movies.csv", path=str(path), line=line,
                             field="movieId")
        rating = _number(row["rating"], float, path, line, "rating")
        timestamp = _number(row["timestamp"], int, path, line, "timestamp")
        by_user[user].append(Rating(movie_id, rating, timestamp, line))
    if not by_user:
        raise InputError("no ratings in the file", path=str(path))
    return by_user


def _number(text: str, kind: type, path: Path, line: int, name: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"expected a number, found {text!r}", path=str(path), line=line,
                         field=name) from None


def _user_record(user: str, ratings: list[Rating], movies: dict[str, Movie], catalogue: list[str], seed: int,
                 settings: dict[str, Any], source: Path) -> UserRecord | str:
    ratings = sorted(ratings, key=lambda r: (r.timestamp, r.line))
    positives = [r for r in ratings if r.rating >= settings["positive_min"]]
    if not positives:
        return "no_positive"
    target = positives[-1]
    earlier = [r for r in ratings if r.timestamp < target.timestamp]
    history_pos = [r for r in earlier if r.rating >= settings["positive_min"]]
    available = len(history_pos)
    history_pos = history_pos[-settings["max_history"]:]
    if len(history_pos) < max(settings["min_history"], 1):
        return "short_history"

    rng = user_rng(seed, "movielens", user)
    target_key = movies[target.movie_id].key
    low = [r for r in earlier if r.rating <= settings["negative_max"]
           and movies[r.movie_id].key != target_key] if settings["negatives"] == "low_rated" else []
    rng.shuffle(low)
    negatives = _Negatives(low, rng, catalogue, movies,
                           seen={r.movie_id for r in ratings},
                           taken={target_key} | {movies[r.movie_id].key for r in history_pos})
    target_neg = negatives.draw()
    history = []
    for r in history_pos:
        neg = negatives.draw()
        history.append(Interaction(
            chosen=movies[r.movie_id].text, rejected=movies[neg.movie_id].text, id=r.movie_id,
            timestamp=float(r.timestamp), domain="movielens",
            meta={"rating": r.rating, "rejected_id": neg.movie_id, "rejected_source": neg.source,
                  "tags": list(movies[r.movie_id].tags), "rejected_tags": list(movies[neg.movie_id].tags),
                  **({"rejected_rating": neg.rating} if neg.rating is not None else {})}))
    target_pair = Target(chosen=movies[target.movie_id].text, rejected=movies[target_neg.movie_id].text)
    history, dup = drop_target_items(history, target_pair)
    meta = {"benchmark": "movielens", "source": str(source), "seed": seed, **settings,
            "history_available": available,
            "excluded_same_timestamp": sum(1 for r in ratings if r.timestamp == target.timestamp) - 1,
            "dropped_target_duplicates": dup,
            "target": {"movie_id": target.movie_id, "rating": target.rating, "timestamp": target.timestamp,
                       "rejected_id": target_neg.movie_id, "rejected_source": target_neg.source}}
    return UserRecord(user_id=user, history=history, target=target_pair, meta=meta)


@dataclass(frozen=True)
class _Draw:
    movie_id: str
    source: Literal["low_rated", "unseen"]
    rating: float | None


class _Negatives:
    """Rejected items for one user: their own low ratings first, then movies they never rated.

    Each item is used once per user so no two pairs share a rejected movie; text already used by the
    target or a chosen item is skipped (two catalogue ids can carry one title).
    """

    def __init__(self, low: list[Rating], rng: random.Random, catalogue: list[str], movies: dict[str, Movie],
                 seen: set[str], taken: set[str]) -> None:
        self.low, self.rng, self.catalogue, self.movies = low, rng, catalogue, movies
        self.seen, self.taken = set(seen), set(taken)

    def draw(self) -> _Draw:
        while self.low:
            r = self.low.pop()
            if self._claim(r.movie_id):
                return _Draw(r.movie_id, "low_rated", r.rating)
        # Rejection sampling: users rate at most a few thousand of ~9k movies, so this ends fast; the
        # bound turns an exhausted catalogue into an error instead of a hang.
        for _ in range(100 * len(self.catalogue)):
            movie_id = self.rng.choice(self.catalogue)
            if movie_id not in self.seen and self._claim(movie_id):
                return _Draw(movie_id, "unseen", None)
        raise InputError("the catalogue has no unseen movie left to use as a rejected item")

    def _claim(self, movie_id: str) -> bool:
        key = self.movies[movie_id].key
        if key in self.taken:
            return False
        self.taken.add(key)
        self.seen.add(movie_id)
        return True
