"""The DSP loader on the real test split: users built from reply styles, no query shared between a user's
history and target, seeded and stratified by persona; and bad input named by element and field."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from prefscribe.data import load
from prefscribe.data.dsp import PERSONAS, STYLES, dsp_personas
from prefscribe.errors import InputError
from prefscribe.evaluate import donors


@pytest.fixture(scope="module")
def dsp_dir(real_file):
    return real_file("dsp")


@pytest.fixture(scope="module")
def raw(dsp_dir):
    return json.loads((dsp_dir / "domain_specific_preference.test.json").read_text())


@pytest.fixture(scope="module")
def everyone(dsp_dir):
    return load("dsp", dsp_dir)


def test_all_users_are_built_from_the_persona_replies(everyone, raw, assert_no_target_in_history):
    version, personas = dsp_personas()
    # 3 queries are unusable for every persona (a blank reply, or all styles replying alike): 658 // 5 = 131.
    assert Counter(r.meta["persona"] for r in everyone) == {p: 131 for p in PERSONAS}
    assert Counter(len(r.history) for r in everyone) == {4: len(everyone)}
    assert_no_target_in_history(everyone)
    rejected_styles = Counter()
    for record in everyone:
        persona = record.meta["persona"]
        assert record.gold_preference == personas[persona] and record.meta["persona_version"] == version
        assert record.meta["stratum"] == persona
        target_q = record.meta["target_query_index"]
        queries = [h.meta["query_index"] for h in record.history]
        assert target_q not in queries and len(set(queries)) == len(queries)
        assert record.target.context == raw[target_q]["query"]
        assert record.target.chosen == raw[target_q]["responses"][persona]
        assert record.target.rejected == raw[target_q]["responses"][record.meta["target_rejected_style"]]
        for h in record.history:
            replies = raw[h.meta["query_index"]]["responses"]
            assert h.context == raw[h.meta["query_index"]]["query"]
            assert h.chosen == replies[persona] and h.rejected == replies[h.meta["rejected_style"]]
            assert h.meta["rejected_style"] != persona and h.chosen != h.rejected
            rejected_styles[h.meta["rejected_style"]] += 1
    assert set(rejected_styles) == set(STYLES)  # every style, `normal` included, is drawn against others


def test_a_persona_never_reuses_a_query_across_its_users(everyone):
    for persona in PERSONAS:
        used = [q for r in everyone if r.meta["persona"] == persona
                for q in (r.meta["target_query_index"], *(h.meta["query_index"] for h in r.history))]
        assert len(used) == len(set(used)) == 131 * 5


def test_limit_is_seeded_and_stratified(dsp_dir):
    first = load("dsp", dsp_dir, limit=20, seed=3)
    again = load("dsp", dsp_dir, limit=20, seed=3)
    other = load("dsp", dsp_dir, limit=20, seed=4)
    assert [r.model_dump() for r in first] == [r.model_dump() for r in again]
    assert Counter(r.meta["persona"] for r in first) == {p: 5 for p in PERSONAS}
    assert {(r.user_id, r.target.context) for r in first} != {(r.user_id, r.target.context) for r in other}
    assert first[0].meta["sampling"]["stratified_by"] == "meta.stratum"


def test_history_option_changes_the_pairs_per_user(dsp_dir):
    records = load("dsp", dsp_dir, history=2)
    assert Counter(len(r.history) for r in records) == {2: len(records)}
    assert Counter(r.meta["persona"] for r in records) == {p: 658 // 3 for p in PERSONAS}
    with pytest.raises(InputError) as err:
        load("dsp", dsp_dir, history=0)
    assert err.value.field == "history"


def test_mismatched_donors_have_another_persona(dsp_dir):
    records = load("dsp", dsp_dir, limit=16, seed=0)
    by_id = {r.user_id: r for r in records}
    for user, donor in donors(records, seed=0).items():
        assert by_id[donor].meta["persona"] != by_id[user].meta["persona"]


def test_personas_describe_the_style_not_just_the_label():
    version, personas = dsp_personas()
    assert version and set(personas) == set(PERSONAS)
    for name, text in personas.items():
        assert text.startswith("Prefers") and len(text.split()) >= 12
        assert name not in text.lower()  # the reply style in words, not the domain label


def test_bad_input_names_the_element_and_field(tmp_path):
    path = tmp_path / "dsp.json"
    good = {"query": "Why is the sky blue?", "responses": {s: f"{s} reply" for s in STYLES}}
    broken = {"query": "Name a colour.", "responses": {s: "red" for s in STYLES if s != "literature"}}
    path.write_text(json.dumps([good, broken]))
    with pytest.raises(InputError) as err:
        load("dsp", path)
    assert err.value.path == str(path) and err.value.field == "[1].responses.literature"
    path.write_text(json.dumps([good] * 4))  # 4 queries cannot make a user of 4 pairs and a target
    with pytest.raises(InputError) as err:
        load("dsp", path)
    assert "too few usable queries" in str(err.value)
    path.write_text(json.dumps([{**good, "query": f"Q{i}"} for i in range(5)]))
    assert Counter(r.meta["persona"] for r in load("dsp", path)) == {p: 1 for p in PERSONAS}
