"""Loaders on the real public files in shared/data: counts, leakage, time order, seeded sampling."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import pytest

from prefscribe.data import load
from prefscribe.errors import InputError

STUDENT = "Generate a response that can be easily understood by an elementary school student."


# ------------------------------------------------------------------------------------------ P-Soups

@pytest.fixture(scope="module")
def psoups_path(real_file):
    return real_file("psoups/student_phd.json")


def test_psoups_all_users(psoups_path, assert_no_target_in_history):
    records = load("psoups", psoups_path)
    assert len(records) == 600
    assert Counter(r.gold_preference == STUDENT for r in records) == {True: 300, False: 300}
    assert_no_target_in_history(records)
    # Users 300, 309 and 310 repeat their target inside their history: exactly that pair is dropped.
    dropped = {r.user_id: r.meta["dropped_target_duplicates"] for r in records
               if r.meta["dropped_target_duplicates"]}
    assert dropped == {"student_phd_300": 1, "student_phd_309": 1, "student_phd_310": 1}
    assert Counter(len(r.history) for r in records) == {4: 597, 3: 3}
    first = next(r for r in records if r.user_id == "student_phd_0")
    assert first.target.context.startswith("Given the given text, identify the writer's opinion.")
    assert first.history[1].chosen == "Non-fiction." and first.history[1].rejected == "Fiction."
    assert first.meta["profile"].startswith("Young, High Extraversion")


def test_psoups_limit_is_stratified_and_reproducible(psoups_path):
    first = load("psoups", psoups_path, limit=60, seed=3)
    again = load("psoups", psoups_path, limit=60, seed=3)
    other = load("psoups", psoups_path, limit=60, seed=4)
    assert [r.user_id for r in first] == [r.user_id for r in again]
    assert {r.user_id for r in first} != {r.user_id for r in other}
    for sample in (first, other):
        assert Counter(r.gold_preference == STUDENT for r in sample) == {True: 30, False: 30}
    # Not the first 60 of the file, and not returned sorted by persona either.
    assert {r.user_id for r in first} != {f"student_phd_{i}" for i in range(60)}
    assert len({r.gold_preference for r in first[:10]}) == 2
    meta = first[0].meta
    assert meta["seed"] == 3 and meta["sampling"]["limit"] == 60 and meta["sampling"]["population"] == 600
    assert meta["sampling"]["stratified_by"] == "meta.stratum"
    assert sorted(s["kept"] for s in meta["sampling"]["strata"].values()) == [30, 30]


def test_psoups_odd_limit_still_takes_both_personas(psoups_path):
    sample = load("psoups", psoups_path, limit=7, seed=0)
    counts = Counter(r.gold_preference == STUDENT for r in sample)
    assert sorted(counts.values()) == [3, 4]


# ---------------------------------------------------------------------------------------- MovieLens

@pytest.fixture(scope="module")
def movielens(real_file):
    folder = real_file("movielens")
    ratings: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)
    with open(folder / "ratings.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ratings[row["userId"]][row["movieId"]] = (float(row["rating"]), int(row["timestamp"]))
    return load("movielens", folder), ratings


def test_movielens_counts(movielens):
    records, ratings = movielens
    assert len(ratings) == 671
    # 3 users rated all their positives in the same second as their last one: no history before it.
    assert len(records) == 668
    assert records[0].meta["users_dropped"] == {"no_positive": 0, "short_history": 3}
    assert all(1 <= len(r.history) <= 50 for r in records)
    assert max(len(r.history) for r in records) == 50


def test_movielens_time_order_and_ratings(movielens, assert_no_target_in_history):
    records, ratings = movielens
    assert_no_target_in_history(records)
    for record in records:
        own = ratings[record.user_id]
        target = record.meta["target"]
        assert own[target["movie_id"]] == (target["rating"], target["timestamp"])
        assert target["rating"] >= 4
        # The target is the user's last positive: no positive is later than it.
        assert all(ts <= target["timestamp"] for r, ts in own.values() if r >= 4)
        times = [h.timestamp for h in record.history]
        assert times == sorted(times)
        assert all(t < target["timestamp"] for t in times), record.user_id  # strictly earlier
        for h in record.history:
            assert own[h.id][0] >= 4 and own[h.id][0] == h.meta["rating"]
            rejected = h.meta["rejected_id"]
            if h.meta["rejected_source"] == "low_rated":
                assert own[rejected][0] <= 2 and own[rejected][1] < target["timestamp"]
            else:
                assert rejected not in own  # an unseen movie
        if target["rejected_source"] == "unseen":
            assert target["rejected_id"] not in own
        # Each rejected movie is used once per user.
        used = [h.meta["rejected_id"] for h in record.history] + [target["rejected_id"]]
        assert len(used) == len(set(used))


def test_movielens_item_text(movielens):
    records, _ = movielens
    user1 = next(r for r in records if r.user_id == "1")
    assert user1.target.chosen == "Cinema Paradiso (Nuovo cinema Paradiso) (1989) — Drama"
    assert user1.meta["target"]["timestamp"] == 1260759205


def test_movielens_tags_are_each_movies_genres_and_decade(movielens, real_file):
    records, _ = movielens
    genres = {}
    with open(real_file("movielens") / "movies.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            genres[row["movieId"]] = [g for g in row["genres"].split("|") if g != "(no genres listed)"]
    for record in records[:50]:
        for h in record.history:
            year = int(h.chosen.split(" — ")[0].rstrip()[-5:-1])
            assert h.meta["tags"] == genres[h.id] + [f"{year // 10 * 10}s"]
            assert set(genres[h.meta["rejected_id"]]) <= set(h.meta["rejected_tags"])


def test_movielens_unseen_negatives_only(real_file):
    records = load("movielens", real_file("movielens"), limit=20, seed=1, negatives="unseen")
    assert len(records) == 20
    assert {h.meta["rejected_source"] for r in records for h in r.history} == {"unseen"}
    assert all(r.meta["seed"] == 1 and r.meta["negatives"] == "unseen" for r in records)


# --------------------------------------------------------------------------------------------- MIND

def test_mind(real_file, assert_no_target_in_history):
    path = real_file("mind/sample400by_ratio.csv")
    records = load("mind", path)
    assert len(records) == 400
    assert_no_target_in_history(records)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = {row["impression_id"]: row for row in csv.DictReader(fh)}
    for record in records:
        row = rows[record.user_id]
        history_titles = [t.strip() for t in row["history_title"].split("\n")]
        candidates = [t.strip() for t in row["candidate_title"].split("\n")]
        clicked = {candidates[int(c[1:]) - 1] for c in row["label"].split(",")}
        assert record.target.chosen in clicked
        assert record.target.rejected in candidates and record.target.rejected not in clicked
        assert [h.chosen for h in record.history] == history_titles  # order kept, nothing lost here
        rejected = [h.rejected for h in record.history if h.rejected]
        assert len(rejected) == min(len(history_titles), 8) == record.meta["history_paired"]
        assert len(set(rejected)) == len(rejected)
        assert all(r in candidates and r not in clicked for r in rejected)
    assert sum(r.meta["history_positive_only"] for r in records) > 0  # long histories outrun 8 negatives
    # Tags: the category and subcategory of each clicked item, and of each rejected candidate.
    for record in records[:40]:
        for h in record.history:
            assert h.meta["tags"] == [h.meta["category"], h.meta["subvert"]]
            assert len(h.meta.get("rejected_tags", [])) == (2 if h.rejected else 0)


def test_mind_limit_keeps_each_users_draws(real_file):
    path = real_file("mind/sample400by_ratio.csv")
    everyone = {r.user_id: r for r in load("mind", path, seed=5)}
    some = load("mind", path, limit=25, seed=5)
    assert len(some) == 25
    for record in some:  # per-user generators: a user is drawn the same with or without `limit`
        assert record.target == everyone[record.user_id].target
        assert record.history == everyone[record.user_id].history
    positive_only = load("mind", path, limit=5, history_negatives="none")
    assert all(h.rejected is None for r in positive_only for h in r.history)


def test_mind_items_can_show_their_category_with_the_same_draws(real_file):
    path = real_file("mind/sample400by_ratio.csv")
    titles = load("mind", path, limit=30, seed=3)
    shown = load("mind", path, limit=30, seed=3, item_text="category")
    assert [r.user_id for r in shown] == [r.user_id for r in titles]

    def title(text):
        return text.rsplit(" — ", 1)[0]

    for plain, record in zip(titles, shown, strict=True):
        assert (title(record.target.chosen), title(record.target.rejected)) == (plain.target.chosen,
                                                                               plain.target.rejected)
        assert [title(h.chosen) for h in record.history] == [h.chosen for h in plain.history]
        assert [h.rejected and title(h.rejected) for h in record.history] == [h.rejected
                                                                              for h in plain.history]
        for h in record.history:  # the text names what the tags count
            assert h.chosen.endswith(" — " + ", ".join(h.meta["tags"]))
            assert not h.rejected or h.rejected.endswith(" — " + ", ".join(h.meta["rejected_tags"]))
    assert " — sports" in " ".join(r.target.chosen + r.target.rejected for r in shown)
    with pytest.raises(InputError, match="item_text must be 'title' or 'category'"):
        load("mind", path, item_text="abstract")


# -------------------------------------------------------------------------------------- Amazon Games

def test_amazon(real_file, assert_no_target_in_history):
    folder = real_file("amazon_games")
    records = load("amazon", folder)
    assert len(records) == 6000  # the users of Games-6k.random
    assert_no_target_in_history(records)
    titles, inter, candidates = {}, {}, {}
    with open(folder / "Games-6k.item", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            item, title = line.rstrip("\n").split("\t")
            titles[item] = title.strip()
    with open(folder / "Games-6k.test.inter", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            user, items, target = line.rstrip("\n").split("\t")
            inter[user] = (items.split(), target)
    with open(folder / "Games-6k.random", encoding="utf-8") as fh:
        for line in fh:
            user, items = line.rstrip("\n").split("\t")
            candidates[user] = set(items.split())
    for record in records:
        history, target = inter[record.user_id]
        assert record.target.chosen == titles[target]
        kept = history[-50:]
        assert [h.id for h in record.history] == [
            i for i in kept if titles[i] not in (record.target.chosen, record.target.rejected)]
        negatives = [h.meta["rejected_id"] for h in record.history] + [record.meta["target"]["rejected_id"]]
        assert len(set(negatives)) == len(negatives)
        for item in negatives:
            assert item not in history and item != target  # never one of the user's own items
            assert item in candidates[record.user_id]
    # LLMRank's candidates are drawn without excluding the user's items: they are removed here.
    assert sum(r.meta["candidates_removed"] > 0 for r in records) == 348
