"""The pipeline on real users with scripted models: what is kept, what is dropped and counted, the SFT
records' exact form, streaming, resuming and caching."""

from __future__ import annotations

import itertools
import json

import pytest

from prefscribe.cache import ResultCache
from prefscribe.data import split_segments
from prefscribe.errors import InputError
from prefscribe.infer import InferConfig, InferJob, Inferrer
from prefscribe.prompts import get_prompts, parse_profile
from prefscribe.schema import Profile
from prefscribe.synth import (
    BELOW_LAMBDA,
    BELOW_THRESHOLD,
    JUDGE_WRONG,
    MENTIONS_TARGET,
    NO_TARGET,
    TOO_FEW_TARGETS,
    TOO_FEW_VALID,
    SynthConfig,
    funnel_text,
    synthesize,
    working_history,
)

from ..conftest import FakeBackend

CONFIG = SynthConfig(max_history=30)  # paper thresholds: 0.9, 5 targets, min_valid 3, lambda 0.8


def _middle(user, config=CONFIG):
    return split_segments(working_history(user, config.max_history, config.include_target), 3)[1]


def _row(report, pass_, stage, unit):
    return next(r for r in report["stages"] if (r["pass"], r["stage"], r["unit"]) == (pass_, stage, unit))


@pytest.fixture
def scripted(world, movielens_users):
    """Six real MovieLens users, each scripted to meet one fate in the scratch pass."""
    users = [u for u in movielens_users if len(u.history) == 30][:6]
    assert len(users) == 6
    w = world(users)
    fates = {}
    for name, user in zip(["lambda_edge", "too_few_valid", "kept", "few_targets", "threshold", "generation"],
                          users):
        middle = _middle(user)
        keys = [w.key(h) for h in middle]
        for key in keys:
            w.tract[key] = 0.89               # just below the 0.9 threshold
        tractable = keys[:5] if name != "few_targets" else keys[:2]
        for key in tractable:
            w.tract[key] = 0.91               # just above
        if name == "lambda_edge":
            w.wrong |= set(tractable[:2])     # 3 valid (= min_valid), merged accuracy 3/5 = 0.6
        if name == "too_few_valid":
            w.wrong |= set(tractable[:3])     # 2 valid < 3
        if name == "kept":
            w.wrong |= set(tractable[:1])     # 4 valid, merged accuracy 4/5 = 0.8 = lambda
        if name == "generation":
            w.broken.add(tractable[0])
            w.leaky.add(tractable[1])         # 3 valid, accuracy 0.6
        fates[name] = (user, middle, tractable)
    return w, users, fates


def test_every_threshold_on_both_sides(scripted):
    w, users, fates = scripted
    result = synthesize(users, w.models(), CONFIG)
    outcome = {o["user_id"]: o for o in result.outcomes}
    kept_users = {r["user_id"] for r in result.records}
    assert kept_users == {fates["kept"][0].user_id, fates["threshold"][0].user_id}

    def dropped_at(name):
        events = outcome[fates[name][0].user_id]["events"]
        return [(e["stage"], next(iter(e["dropped"]))) for e in events if e["unit"] == "users" and e["dropped"]]

    assert dropped_at("lambda_edge") == [("user_filter", BELOW_LAMBDA)]
    assert dropped_at("too_few_valid") == [("validate", TOO_FEW_VALID)]
    assert dropped_at("few_targets") == [("targets", TOO_FEW_TARGETS)]
    assert dropped_at("generation") == [("user_filter", BELOW_LAMBDA)]
    assert dropped_at("kept") == [] and dropped_at("threshold") == []

    # Targets: exactly the interactions scored >= 0.9; the rest counted as below the threshold.
    for user, middle, tractable in fates.values():
        details = outcome[user.user_id]["passes"]["scratch"]
        history = working_history(user, 30, False)
        assert sorted(w.key(history[t["index"]]) for t in details["targets"]) == sorted(tractable)
        assert all(t["score"] == pytest.approx(0.91) for t in details["targets"])
        targets_event = next(e for e in outcome[user.user_id]["events"]
                             if e["stage"] == "targets" and e["unit"] == "candidates")
        assert targets_event["dropped"] == {BELOW_THRESHOLD: len(middle) - len(tractable)}
    kept = outcome[fates["kept"][0].user_id]["passes"]["scratch"]
    assert kept["accuracy"] == pytest.approx(0.8)
    assert outcome[fates["lambda_edge"][0].user_id]["passes"]["scratch"]["accuracy"] == pytest.approx(0.6)

    report = result.report
    assert _row(report, "scratch", "targets", "users")["dropped"] == {TOO_FEW_TARGETS: 1}
    assert _row(report, "scratch", "generate", "candidates")["dropped"] == {
        MENTIONS_TARGET: 1, "no </think> in the reply (the model never closed it)": 1}
    assert _row(report, "scratch", "validate", "candidates")["dropped"] == {JUDGE_WRONG: 2 + 3 + 1}
    assert _row(report, "scratch", "validate", "users")["dropped"] == {TOO_FEW_VALID: 1}
    assert _row(report, "scratch", "user_filter", "users") == {
        "pass": "scratch", "stage": "user_filter", "unit": "users", "in": 4, "kept": 2,
        "dropped": {BELOW_LAMBDA: 2}}
    assert report["records"] == {"scratch": 2, "update": 0, "total": 2}
    spread = report["tractability"]["scratch"]
    assert spread["scored"] == sum(len(m) for _, m, _ in fates.values())
    assert spread["min"] == pytest.approx(0.89) and spread["max"] == pytest.approx(0.91)

    # The other side of lambda: at 0.6 the two users at accuracy 0.6 are kept too.
    looser = synthesize(users, w.models(), SynthConfig(max_history=30, lam=0.6))
    assert {r["user_id"] for r in looser.records} == kept_users | {fates["lambda_edge"][0].user_id,
                                                                   fates["generation"][0].user_id}
    # The other side of min_valid: at 2, the user with 2 targets gets through target selection and the
    # user with 2 valid candidates through validation.
    fewer = synthesize(users, w.models(), SynthConfig(max_history=30, min_valid=2))
    assert _row(fewer.report, "scratch", "targets", "users")["kept"] == 6
    row = _row(fewer.report, "scratch", "validate", "users")
    assert row["dropped"] == {} and row["kept"] == 6


def test_funnel_rows_add_up_and_chain(scripted):
    w, users, _ = scripted
    report = synthesize(users, w.models(), SynthConfig(max_history=30, streaming=True, lam=0.6)).report
    for row in report["stages"]:
        assert row["in"] == row["kept"] + sum(row["dropped"].values())
    chain = [("targets", "users"), ("validate", "users"), ("merge", "users"), ("user_filter", "users")]
    for pass_ in ("scratch", "update"):
        rows = [_row(report, pass_, *key) for key in chain]
        for before, after in itertools.pairwise(rows):
            assert after["in"] == before["kept"]
        assert rows[-1]["kept"] == report["records"][pass_]
        gen = _row(report, pass_, "generate", "candidates")
        assert 0 < gen["in"] <= _row(report, pass_, "targets", "candidates")["kept"]
        assert _row(report, pass_, "validate", "candidates")["in"] == gen["kept"]
    assert _row(report, "update", "targets", "users")["in"] == report["records"]["scratch"]
    assert "user_filter" in funnel_text(report) and report["users"] == len(users)


def test_sft_records_are_the_inference_prompt_and_a_think_completion(world, movielens_users):
    users = movielens_users[:5]
    w = world(users)
    result = synthesize(users, w.models(), SynthConfig(max_history=30, streaming=True))
    assert result.report["records"]["scratch"] == 5 and result.report["records"]["update"] == 5
    prompts = get_prompts()
    inferrer = Inferrer(FakeBackend(), InferConfig(style="reasoning"))
    scratch = {r["user_id"]: r for r in result.records if r["kind"] == "scratch"}
    for record in result.records:
        user = next(u for u in users if u.user_id == record["user_id"])
        start, end = record["meta"]["segment"]
        segment = working_history(user, 30, False)[start:end]
        past = scratch[user.user_id]["summary"] if record["kind"] == "update" else None
        rendered = prompts.render_history(segment, None, len)
        assert record["prompt"] == prompts.inference_messages(rendered, past, "reasoning")
        # ... which is what inference itself sends for that history and past profile.
        job = InferJob(segment, Profile(profile=past) if past else None)
        assert record["prompt"] == inferrer.plan(job).messages
        (message,) = record["completion"]
        assert message["role"] == "assistant" and message["content"].startswith("<think>")
        reasoning, _, summary = message["content"][len("<think>"):].partition("</think>\n")
        assert reasoning and summary == record["summary"]
        parsed = parse_profile(message["content"], "reasoning")
        assert parsed.profile == record["summary"] and parsed.reasoning == reasoning
        assert record["meta"]["accuracy"] >= 0.8 and record["prompt_version"] == prompts.version
    # Update examples continue from the scratch summary over the middle segment.
    for record in result.records:
        if record["kind"] == "update":
            assert scratch[record["user_id"]]["summary"] in record["prompt"][1]["content"]
            assert record["meta"]["segment"][0] == scratch[record["user_id"]]["meta"]["segment"][1]


def test_users_too_short_are_dropped_and_counted(world, psoups_users):
    users = psoups_users[:10]
    w = world(users)
    strict = synthesize(users, w.models(), SynthConfig(min_segment=3, min_valid=1))
    row = _row(strict.report, "all", "segment", "users")
    assert row == {"pass": "all", "stage": "segment", "unit": "users", "in": 10, "kept": 0,
                   "dropped": {"segment under 3 interactions": 10}}
    assert strict.records == [] and not w.teacher.calls
    loose = synthesize(users, w.models(), SynthConfig(min_segment=1, min_valid=1, streaming=True))
    assert _row(loose.report, "all", "segment", "users")["kept"] == 10
    assert loose.report["records"]["scratch"] > 0 and loose.report["records"]["update"] > 0
    no_target = _row(loose.report, "scratch", "targets", "users")["dropped"]
    assert set(no_target) <= {NO_TARGET}


def test_resume_from_the_journal_makes_no_model_call(world, movielens_users, tmp_path):
    users = movielens_users[:4]
    journal = tmp_path / "sft.journal.jsonl"
    config = SynthConfig(max_history=30, streaming=True, chunk_users=2)
    first_world = world(users)
    first = synthesize(users, first_world.models(), config, journal_path=journal)
    assert len(journal.read_text().splitlines()) == 1 + 4
    again_world = world(users)
    again = synthesize(users, again_world.models(), config, journal_path=journal)
    assert not again_world.teacher.calls and not again_world.judge.calls and not again_world.scorer.calls
    assert again.records == first.records and again.report["stages"] == first.report["stages"]
    assert again.report["resumed_users"] == 4

    # An interrupted write: the cut line's user is redone, the others are not.
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    redo_world = world(users)
    redone = synthesize(users, redo_world.models(), config, journal_path=journal)
    assert redone.records == first.records and redone.report["resumed_users"] == 3
    assert redo_world.teacher.calls
    assert all(json.loads(line) for line in journal.read_text().splitlines())

    with pytest.raises(InputError, match="other settings"):
        synthesize(users, world(users).models(), SynthConfig(max_history=30, lam=0.5), journal_path=journal)
    fresh = synthesize(users, world(users).models(), SynthConfig(max_history=30, lam=0.5), journal_path=journal,
                       fresh=True)
    assert fresh.report["resumed_users"] == 0


def test_result_cache_makes_a_rerun_free(world, movielens_users, tmp_path):
    users = movielens_users[:3]
    cache = ResultCache(tmp_path / "cache.sqlite")
    first = synthesize(users, world(users).models(), SynthConfig(max_history=30), cache=cache)
    w = world(users)
    second = synthesize(users, w.models(), SynthConfig(max_history=30), cache=cache)
    assert second.records == first.records and first.records
    assert not w.teacher.calls and not w.judge.calls and not w.scorer.calls


def test_write_outputs(world, movielens_users, tmp_path):
    users = movielens_users[:2]
    result = synthesize(users, world(users).models(), SynthConfig(max_history=30))
    report_path = result.write(tmp_path / "sft.jsonl")
    assert report_path == tmp_path / "sft.funnel.json"
    lines = (tmp_path / "sft.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == result.records
    assert json.loads(report_path.read_text())["records"] == result.report["records"]
