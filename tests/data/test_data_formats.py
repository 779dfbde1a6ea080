"""Formats not obtainable here (upi files, PersonaMem, HiCUPID), written in the tests to their published
shape; and bad input of every loader, which must name the file, the line and the field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from prefscribe import data
from prefscribe.data import LOADERS, load
from prefscribe.errors import InputError


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- upi

ALIGNX_LINE = {
    "userid": "alignx_0",
    "history": [{"query": "Post A", "chosen": "kind reply", "rejected": "rude reply"},
                {"query": "Post B", "chosen": "long answer", "rejected": None}],
    "target": {"query": "Post C", "chosen": "warm reply", "rejected": "cold reply"},
    "ground_truth_persona": "Prefers warmth.",
}


def test_upi_triples_alignx(tmp_path, assert_no_target_in_history):
    path = write_jsonl(tmp_path / "alignx_upi.jsonl", [ALIGNX_LINE, {**ALIGNX_LINE, "userid": "alignx_1"}])
    records = load("upi", path)
    assert sorted(r.user_id for r in records) == ["alignx_0", "alignx_1"]
    record = next(r for r in records if r.user_id == "alignx_0")
    assert record.gold_preference == "Prefers warmth."
    assert [(h.context, h.chosen, h.rejected) for h in record.history] == [
        ("Post A", "kind reply", "rude reply"), ("Post B", "long answer", None)]
    assert record.target.model_dump() == {"context": "Post C", "chosen": "warm reply",
                                          "rejected": "cold reply"}
    assert record.meta["benchmark"] == "alignx" and record.meta["line"] == 1 and record.meta["seed"] == 0
    assert_no_target_in_history(records)


def test_upi_recommendation_placeholder_and_leak(tmp_path):
    line = {"userid": 7,
            "history": [{"query": None, "chosen": "News A", "rejected": "No negative sample."},
                        {"query": None, "chosen": "News T", "rejected": "News B"}],  # holds the target
            "target": {"query": None, "chosen": "News T", "rejected": "News U"}}
    record, = load("upi", write_jsonl(tmp_path / "mind_upi.jsonl", [line]))
    assert record.user_id == "7" and record.target.context is None
    assert [(h.chosen, h.rejected) for h in record.history] == [("News A", None)]
    assert record.meta["rejected_placeholders_read_as_none"] == 1
    assert record.meta["dropped_target_duplicates"] == 1


def test_upi_chat_history_hicupid_shape(tmp_path):
    # hicupid_upi.jsonl as the reference writes it: no userid, `qa_index`, `golden`, chat history.
    line = {"qa_index": 3, "dialogue_id": ["d1"], "type": "persona",
            "target": {"query": "Plan my weekend?", "chosen": "A hike, since you love trails.",
                       "rejected": "Maybe a movie."},
            "history": [{"role": "user", "content": "I love hiking."},
                        {"role": "assistant", "content": "Nice! Where do you hike?"},
                        {"role": "user", "content": "Mostly the Alps."},
                        {"role": "assistant", "content": "Beautiful."}],
            "golden": "The user loves hiking."}
    record, = load("upi", write_jsonl(tmp_path / "hicupid_upi.jsonl", [line]))
    assert record.user_id == "3" and record.meta["user_id_field"] == "qa_index"
    assert record.gold_preference == "The user loves hiking."
    assert [(h.context, h.chosen, h.rejected) for h in record.history] == [
        (None, "I love hiking.", None), ("Nice! Where do you hike?", "Mostly the Alps.", None)]
    assert record.meta["chat_assistant_unanswered"] == 1


def test_upi_generation_target(tmp_path):
    line = {"userid": "u", "history": [{"query": "q", "chosen": "c", "rejected": None}],
            "target": {"query": "Review this", "answer": "Great product."}}
    record, = load("upi", write_jsonl(tmp_path / "product_review_upi.jsonl", [line]))
    assert record.target is None and record.meta["target_answer"] == "Great product."


def test_upi_limit_stratifies_shared_personas(tmp_path):
    # student_phd_upi.jsonl is sorted by persona like its source: the sample must hold both.
    lines = [{**ALIGNX_LINE, "userid": f"u{i}", "ground_truth_persona": "kid" if i < 20 else "phd"}
             for i in range(40)]
    path = write_jsonl(tmp_path / "student_phd_upi.jsonl", lines)
    sample = load("upi", path, limit=10, seed=2)
    assert sorted(r.gold_preference for r in sample) == ["kid"] * 5 + ["phd"] * 5
    assert sample[0].meta["sampling"]["stratified_by"] == "gold_preference"
    assert [r.user_id for r in sample] == [r.user_id for r in load("upi", path, limit=10, seed=2)]


# ------------------------------------------------------------------------------------------ PersonaMem

SNIPPET = [{"role": "system", "content": "Current user persona: secret vegan chef"},
           {"role": "user", "content": "I switched to a plant-based diet last month."},
           {"role": "assistant", "content": "Great choice! Any favourite dishes?"},
           {"role": "user", "content": "Lentil curry, always."}]
PM_ROW = {"persona_id": 12, "user_query": {"role": "user", "content": "Suggest a dinner for tonight."},
          "correct_answer": "A chickpea and spinach curry.",
          "incorrect_answers": ["A steak with fries.", "Grilled salmon.", "Chicken wings."],
          "related_conversation_snippet": SNIPPET, "preference": "Eats plant-based food.",
          "pref_type": "stereotypical_pref"}


def _check_personamem(records, assert_no_target_in_history):
    record = records[0]
    assert record.user_id == "12:0"
    assert record.target.context == "Suggest a dinner for tonight."
    assert record.target.chosen == "A chickpea and spinach curry."
    assert record.target.rejected in PM_ROW["incorrect_answers"]
    assert record.gold_preference == "Eats plant-based food."
    assert [(h.context, h.chosen) for h in record.history] == [
        (None, "I switched to a plant-based diet last month."),
        ("Great choice! Any favourite dishes?", "Lentil curry, always.")]
    assert record.meta["chat_system_dropped"] == 1  # the hidden persona never reaches the history
    assert record.meta["pref_type"] == "stereotypical_pref"
    assert_no_target_in_history(records)


def test_personamem_jsonl(tmp_path, assert_no_target_in_history):
    path = write_jsonl(tmp_path / "personamem.jsonl", [PM_ROW])
    _check_personamem(load("personamem", path), assert_no_target_in_history)
    # The rejected answer is drawn with the seed and is the same on every load.
    picks = {load("personamem", path, seed=s)[0].target.rejected for s in range(12)}
    assert picks <= set(PM_ROW["incorrect_answers"]) and len(picks) > 1
    assert load("personamem", path, seed=4)[0].target == load("personamem", path, seed=4)[0].target


def test_personamem_csv_with_json_cells(tmp_path, assert_no_target_in_history):
    path = tmp_path / "benchmark.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PM_ROW))
        writer.writeheader()
        writer.writerow({k: json.dumps(v) if not isinstance(v, str) else v for k, v in PM_ROW.items()})
    _check_personamem(load("personamem", path), assert_no_target_in_history)


# --------------------------------------------------------------------------------------------- HiCUPID

def _hicupid_files(folder: Path) -> None:
    (folder / "qa").mkdir(parents=True)
    (folder / "dialogue").mkdir()
    write_jsonl(folder / "dialogue" / "test.jsonl", [
        {"user_id": 0, "dialogue_id": 5, "turn_id": 1, "user": "My sister is a nurse.",
         "assistant": "That is demanding work."},
        {"user_id": 0, "dialogue_id": 5, "turn_id": 0, "user": "I adore jazz.",
         "assistant": "Who do you like?"},
        {"user_id": 0, "dialogue_id": 9, "turn_id": 0, "user": "I hate crowds.", "assistant": "Understood."},
    ])
    write_jsonl(folder / "qa" / "test_2.jsonl", [
        {"user_id": 0, "question_id": 1, "dialogue_id": [5, 9], "type": "persona",
         "question": "Any concert tips?", "personalized_answer": "A small jazz club fits you.",
         "general_answer": "Try a stadium show.",
         "metadata": {"persona": {"relation": "adores", "entity": "jazz"}}},
        {"user_id": 0, "question_id": 2, "dialogue_id": [5], "type": "profile", "question": "?",
         "personalized_answer": "a", "general_answer": "b", "metadata": {}},
    ])


def test_hicupid_folder(tmp_path, assert_no_target_in_history):
    _hicupid_files(tmp_path)
    records = load("hicupid", tmp_path)
    assert len(records) == 1
    record = records[0]
    assert record.user_id == "0:1" and record.gold_preference == "The user adores jazz."
    assert record.target.model_dump() == {"context": "Any concert tips?",
                                          "chosen": "A small jazz club fits you.",
                                          "rejected": "Try a stadium show."}
    # Dialogues in the row's order, turns by turn_id, each user turn after the previous reply.
    assert [(h.context, h.chosen) for h in record.history] == [
        (None, "I adore jazz."), ("Who do you like?", "My sister is a nurse."),
        ("That is demanding work.", "I hate crowds.")]
    assert record.meta["qa_rows_skipped"] == {"type=profile": 1}
    assert_no_target_in_history(records)


def test_hicupid_missing_dialogue_is_an_error(tmp_path):
    _hicupid_files(tmp_path)
    qa = tmp_path / "qa" / "test_2.jsonl"
    row = json.loads(qa.read_text().splitlines()[0]) | {"dialogue_id": [5, 77]}
    write_jsonl(qa, [row])
    with pytest.raises(InputError) as err:
        load("hicupid", qa, dialogues=tmp_path / "dialogue" / "test.jsonl")
    assert (err.value.path, err.value.line, err.value.field) == (str(qa), 1, "dialogue_id")
    assert "'77'" in str(err.value)


# ------------------------------------------------------------------------------ malformed input errors

def _error(benchmark: str, path: Path, **options) -> InputError:
    with pytest.raises(InputError) as err:
        load(benchmark, path, **options)
    return err.value


def test_upi_errors_name_file_line_field(tmp_path):
    bad = {**ALIGNX_LINE, "history": [ALIGNX_LINE["history"][0], {"query": "q", "rejected": "r"}]}
    path = write_jsonl(tmp_path / "x_upi.jsonl", [ALIGNX_LINE, bad])
    err = _error("upi", path)
    assert (err.path, err.line, err.field) == (str(path), 2, "history[1].chosen")
    assert str(err).startswith(f"{path}:2, field 'history[1].chosen'")

    path.write_text(json.dumps(ALIGNX_LINE) + "\n\n{not json\n", encoding="utf-8")
    err = _error("upi", path)
    assert (err.line, err.field) == (3, None) and "malformed JSON" in str(err)

    write_jsonl(path, [{k: v for k, v in ALIGNX_LINE.items() if k != "target"}])
    assert (_error("upi", path).field) == "target"


def test_psoups_error_names_user_and_field(tmp_path):
    user = {"prompt": "p", "chosen": "c", "rejected": "r", "ground_truth_persona": "g", "profile": "x",
            "Pair-wise Comparative Feedback": [{"prompt": "p1", "chosen": "c1", "rejected": "r1"}]}
    broken = {**user, "Pair-wise Comparative Feedback": [{"prompt": "p1", "chosen": "  ", "rejected": "r1"}]}
    path = tmp_path / "psoups.json"
    path.write_text(json.dumps([user, broken]), encoding="utf-8")
    err = _error("psoups", path)
    assert (err.path, err.field) == (str(path), "[1].Pair-wise Comparative Feedback[0].chosen")
    path.write_text(json.dumps([user, {k: v for k, v in user.items() if k != "ground_truth_persona"}]))
    assert _error("psoups", path).field == "[1].ground_truth_persona"


def test_movielens_errors(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n2,B (2001),Comedy\n")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,high,20\n")
    err = _error("movielens", tmp_path)
    assert (err.path, err.line, err.field) == (str(ratings), 3, "rating")
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,4.0,10\n1,99,4.0,20\n")
    err = _error("movielens", ratings)
    assert (err.line, err.field) == (3, "movieId") and "not in movies.csv" in str(err)
    ratings.write_text("userId,movieId,stars,timestamp\n")
    assert (_error("movielens", tmp_path).line, _error("movielens", tmp_path).field) == (1, "rating")


def test_movielens_equal_timestamps_leave_history(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{i},M{i} (2000),Drama\n" for i in range(1, 9)))
    # Movies 3 and 4 share the target's second: neither may be history of movie 4 (the last positive).
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n"
                                          "1,1,5.0,10\n1,2,1.0,11\n1,3,4.5,30\n1,4,4.0,30\n")
    record, = load("movielens", tmp_path)
    assert record.target.chosen == "M4 (2000) — Drama"
    assert [h.chosen for h in record.history] == ["M1 (2000) — Drama"]
    assert record.meta["excluded_same_timestamp"] == 1
    # The user's own low rating goes to the target first; the history then gets a movie never rated.
    assert record.target.rejected == "M2 (2000) — Drama"
    assert record.meta["target"]["rejected_source"] == "low_rated"
    assert record.history[0].meta["rejected_source"] == "unseen"
    assert record.history[0].rejected not in {f"M{i} (2000) — Drama" for i in (1, 2, 3, 4)}


def test_mind_errors(tmp_path):
    path = tmp_path / "mind.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["impression_id", "history", "candidate", "label"])
        writer.writerow(["1", "H1: a\nH2: b", "C1: x\nC2: y", "C2"])
        writer.writerow(["2", "H1: a", "C1: x\nC2: y", "C7"])
    err = _error("mind", path)
    assert (err.path, err.field) == (str(path), "label") and err.line == 5 and "C7" in str(err)
    path.write_text("impression_id,history,candidate\n1,H1: a,C1: x\n")
    assert _error("mind", path).field == "label"


def test_amazon_errors(tmp_path):
    (tmp_path / "G.item").write_text("item_id:token\ttitle:token_seq\n1\tGame One\n2\tGame Two\n")
    inter = tmp_path / "G.test.inter"
    inter.write_text("user_id:token\titem_id_list:token_seq\titem_id:token\n7\t1\t2\n8\t1 42\t2\n")
    err = _error("amazon", tmp_path)
    assert (err.path, err.line, err.field) == (str(inter), 3, "item_id_list")
    inter.write_text("user_id:token\titem_id_list:token_seq\titem_id:token\n7\t1\n")
    assert _error("amazon", inter).line == 2


def test_amazon_per_row_inter_and_catalogue_negatives(tmp_path):
    (tmp_path / "S.item").write_text("item_id:token\ttitle:token_seq\n" + "".join(
        f"{i}\tItem {i}\n" for i in range(1, 30)))
    (tmp_path / "S.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "u\t3\t5\t300\nu\t1\t4\t100\nu\t2\t1\t200\nu\t4\t5\t300\n")
    record, = load("amazon", tmp_path / "S.inter")
    assert record.target.chosen == "Item 4"  # last in time; item 3 shares its time and leaves the history
    assert [h.chosen for h in record.history] == ["Item 1", "Item 2"]
    assert record.meta["excluded_same_timestamp"] == 1
    own = {"Item 1", "Item 2", "Item 3", "Item 4"}
    assert all(h.rejected not in own for h in record.history) and record.target.rejected not in own
    assert {h.meta["rejected_source"] for h in record.history} == {"catalogue (never interacted)"}


def test_personamem_error(tmp_path):
    path = write_jsonl(tmp_path / "pm.jsonl", [PM_ROW, {**PM_ROW, "incorrect_answers": "none"}])
    err = _error("personamem", path)
    assert (err.path, err.line, err.field) == (str(path), 2, "incorrect_answers")
    write_jsonl(path, [{**PM_ROW, "related_conversation_snippet": [{"role": "user"}]}])
    assert _error("personamem", path).field == "related_conversation_snippet[0].content"


# ------------------------------------------------------------------------------------------- registry

def test_registry_and_load_errors(tmp_path, real_file):
    assert set(LOADERS) == {"upi", "psoups", "dsp", "movielens", "mind", "amazon", "personamem", "hicupid"}
    err = _error("netflix", tmp_path)
    assert err.field == "benchmark" and "known: amazon, dsp, hicupid" in str(err)
    err = _error("psoups", tmp_path / "nope.json")
    assert err.path == str(tmp_path / "nope.json") and "no such file" in str(err)
    (tmp_path / "x.csv").touch()
    err = _error("mind", tmp_path / "x.csv", colour="red")
    assert err.field == "colour" and "history_negatives" in str(err)
    # The wrong file for a benchmark: P-Soups reading MovieLens ratings.
    err = _error("psoups", real_file("movielens/ratings.csv"))
    assert err.path.endswith("ratings.csv") and "malformed JSON" in str(err)
    err = _error("psoups", real_file("psoups/student_phd.json"), limit=0)
    assert err.field == "limit"


def test_relative_path_resolves_under_env(monkeypatch, data_dir):
    monkeypatch.setenv("PREFSCRIBE_DATA", str(data_dir))
    monkeypatch.chdir("/")  # the relative path does not exist from here: it must come from the variable
    records = load("psoups", "psoups/student_phd.json", limit=4)
    assert len(records) == 4 and records[0].meta["source"] == str(data_dir / "psoups/student_phd.json")


def test_public_surface():
    assert sorted(data.__all__) == sorted([
        "DATA_ENV", "LOADERS", "CrossDomainPair", "Thirds", "clean_tags", "cross_domain_pairs", "history_text",
        "interleave_noise", "load", "load_amazon", "load_dsp", "load_hicupid", "load_mind", "load_movielens",
        "load_personamem", "load_psoups", "load_upi", "minilm_embedder", "positive_only", "reference_thirds",
        "resolve_data_path", "split_segments", "Split", "split_of", "user_rng"])
    assert all(hasattr(data, name) for name in data.__all__)
