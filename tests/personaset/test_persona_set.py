"""`prefscribe persona-set` end to end on the tiny random model: the files are in the P-Soups layout the psoups
loader reads, users of both poles, seeded, resumable from the reply cache. (Model quality is not tested here.)"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from prefscribe.cache import ResultCache
from prefscribe.cli import app
from prefscribe.data import load
from prefscribe.errors import InputError
from prefscribe.evaluate import check_no_target_in_history, donors
from prefscribe.personaset import (
    HISTORY_FIELD,
    PersonaSetConfig,
    build_persona_set,
    load_dimensions,
    load_questions,
)

from ..conftest import DATA

runner = CliRunner()
DIMS = "formal_casual,concise_detailed"


@pytest.fixture(scope="module")
def built(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("set")
    result = runner.invoke(app, ["persona-set", "--out", str(out), "--model", f"hf:{tiny_model_dir}",
                                 "--dimensions", DIMS, "--questions", "12", "--users-per-pole", "3",
                                 "--max-new-tokens", "12", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    return out, result


def test_each_dimension_is_a_p_soups_array_of_both_poles(built):
    out, _ = built
    _, dims = load_dimensions()
    personas = {d.name: {p.persona: p.name for p in d.poles} for d in dims}
    for name in DIMS.split(","):
        users = json.loads((out / f"{name}.json").read_text())
        assert len(users) == 6
        assert Counter(personas[name][u["ground_truth_persona"]] for u in users) == Counter(
            dict.fromkeys(personas[name].values(), 3))
        reply = {}  # (pole, question) -> the one reply written under that pole's instruction
        for user in users:
            assert set(user) == {"prompt", "chosen", "rejected", HISTORY_FIELD, "ground_truth_persona", "profile"}
            assert len(user[HISTORY_FIELD]) == 4
            assert user["prompt"] not in {p["prompt"] for p in user[HISTORY_FIELD]}
            pole = personas[name][user["ground_truth_persona"]]
            other = next(p for p in personas[name].values() if p != pole)
            for pair in [user, *user[HISTORY_FIELD]]:
                assert set(pair) >= {"prompt", "chosen", "rejected"} and pair["chosen"] != pair["rejected"]
                assert reply.setdefault((pole, pair["prompt"]), pair["chosen"]) == pair["chosen"]
                assert reply.setdefault((other, pair["prompt"]), pair["rejected"]) == pair["rejected"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["questions"] == 12 and set(manifest["dimensions"]) == set(
        DIMS.split(","))


def test_the_psoups_loader_reads_it_stratified_by_persona(built):
    out, _ = built
    records = load("psoups", out / "formal_casual.json")
    assert len(records) == 6 and all(len(r.history) == 4 for r in records)
    check_no_target_in_history(records)  # raises on a target item inside a history
    sample = load("psoups", out / "formal_casual.json", limit=4, seed=1)
    assert sorted(Counter(r.gold_preference for r in sample).values()) == [2, 2]
    by_id = {r.user_id: r for r in records}
    for user, donor in donors(records, seed=0).items():  # the mismatched controls borrow the other pole
        assert by_id[donor].gold_preference != by_id[user].gold_preference


@dataclass
class Counting:
    """The tiny model, counting the prompts it is asked to answer."""

    backend: object
    prompts: list = field(default_factory=list)

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, prompts, sampling, progress=None):
        self.prompts.extend(prompts)
        return self.backend.generate(prompts, sampling, progress)


def test_a_rerun_is_read_from_the_reply_cache(tiny_backend, tmp_path):
    cache = ResultCache(tmp_path / "cache.sqlite")
    config = PersonaSetConfig(dimensions=["humorous_serious"], questions=8, users_per_pole=2, max_new_tokens=8,
                              seed=2, batch=3)
    first_model = Counting(tiny_backend)
    first = build_persona_set(first_model, config, cache=cache)
    assert len(first_model.prompts) == 16 and len(cache) == 16  # 8 questions x 2 poles, each cached
    again_model = Counting(tiny_backend)
    again = build_persona_set(again_model, config, cache=cache)
    assert again_model.prompts == [] and again.users == first.users
    other = build_persona_set(tiny_backend, PersonaSetConfig(**{**config.__dict__, "seed": 3}), cache=cache)
    assert other.users != first.users  # another seed: other questions, users and replies


@pytest.mark.skipif(not (DATA / "dsp").exists(), reason="needs ../shared/data/dsp (set PREFSCRIBE_DATA)")
def test_questions_can_come_from_dsp(tiny_model_dir, tmp_path):
    out = tmp_path / "set"
    result = runner.invoke(app, ["persona-set", "--out", str(out), "--model", f"hf:{tiny_model_dir}",
                                 "--dimensions", "optimistic_cautious", "--prompts-from", str(DATA / "dsp"),
                                 "--questions", "6", "--users-per-pole", "2", "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    dsp_queries = {q["query"] for q in json.loads((DATA / "dsp/domain_specific_preference.test.json").read_text())}
    users = json.loads((out / "optimistic_cautious.json").read_text())
    assert {u["prompt"] for u in users} <= dsp_queries
    assert json.loads((out / "manifest.json").read_text())["questions_version"].startswith("file:")


def test_shipped_vocabulary_is_broad_and_versioned():
    version, dims = load_dimensions()
    assert version and len(dims) >= 8 and len({d.name for d in dims}) == len(dims)
    assert all(len(d.poles) == 2 and d.poles[0].persona != d.poles[1].persona for d in dims)
    assert not any("expert" in d.name or "phd" in d.name for d in dims)
    q_version, questions = load_questions()
    assert q_version and len(questions) == 60 == len(set(questions))


def test_questions_file_errors_name_the_element(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps(["Why?", {"text": "no query field"}]))
    with pytest.raises(InputError) as err:
        load_questions(path)
    assert err.value.path == str(path) and err.value.field == "[1]"
    lines = tmp_path / "q.txt"
    lines.write_text("How?\n\nWhy?\nHow?\n")
    assert load_questions(lines)[1] == ["How?", "Why?"]


def test_unknown_dimension_and_missing_out_are_input_errors(tmp_path):
    result = runner.invoke(app, ["persona-set", "--out", str(tmp_path), "--dimensions", "expertise",
                                 "--model", "hf:/nowhere"])
    assert result.exit_code == 2 and "unknown dimension(s) expertise" in result.output
    assert "concise_detailed" in result.output
    result = runner.invoke(app, ["persona-set"])
    assert result.exit_code == 2 and "--out" in result.output
