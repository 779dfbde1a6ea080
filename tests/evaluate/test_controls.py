"""The placebo controls (issue 10, part 1): mismatched profiles, a generic text, another persona's gold; the
paired comparisons; the likelihood method's own baseline. Hand-made users whose right answers are known."""

import json
import math
from collections import Counter

import pytest

from prefscribe.evaluate import EvalConfig, Evaluation, donors, paired_difference, write_report
from prefscribe.infer import Inferrer
from prefscribe.judge import Judge
from prefscribe.prompts import get_prompts
from prefscribe.prompts.templates import BUILTIN, PromptSet
from prefscribe.schema import Interaction, Target, UserRecord

TASTES = ("GOOD", "FINE")


def users(n=8) -> list[UserRecord]:
    """Half like GOOD things, half FINE things; each persona's gold text says so."""
    out = []
    for i in range(n):
        likes, other = TASTES[i % 2], TASTES[1 - i % 2]
        history = [Interaction(context=f"q{i}-{j}", chosen=f"{likes} {i}-{j}", rejected=f"{other} {i}-{j}")
                   for j in range(4)]
        out.append(UserRecord(user_id=f"u{i}", history=history, gold_preference=f"Prefers {likes} items.",
                               target=Target(context=f"t{i}", chosen=f"{likes} target {i}",
                                             rejected=f"{other} target {i}")))
    return out


def writer_reply(prompt) -> str:
    """A writer that gets the taste right: it names what the user chose (the last interaction shown)."""
    content = prompt[-1]["content"]
    return "The user likes GOOD things." if "CHOSEN ITEM BY THE USER: GOOD" in content else \
        "The user likes FINE things."


def judge_options(prompt):
    """Follows a preference that names a taste (0.9); without one it leans to GOOD (0.8): a generic taste."""
    content = prompt[1]["content"]
    item_a = content.split("## Item A\n")[1].split("\n")[0]
    shown = content.split("## User's")[1] if "## User's" in content else ""
    taste = next((t for t in TASTES if t in shown), None)
    p = (0.9 if taste in item_a else 0.1) if taste else (0.8 if "GOOD" in item_a else 0.2)
    return [math.log(p), math.log(1 - p)]


def make_backend(fake_backend):
    return fake_backend(reply_fn=writer_reply, option_fn=judge_options)


def evaluate(backend, out, settings, recs=None, cache=None, **kw):
    evaluation = Evaluation(Inferrer(backend, cache=cache), Judge(backend), EvalConfig(
        benchmark="psoups", settings=settings, out=out, seed=3, **kw))
    results = evaluation.run(recs or users())
    return {r["setting"]: r for r in results}


def items(out) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def generations(backend) -> int:
    return sum(1 for kind, _ in backend.calls if kind == "generate")


# ------------------------------------------------------------------------------------------- donors
def test_derangement_gives_nobody_their_own_and_prefers_another_persona():
    recs = users(8)
    mapping = donors(recs, seed=0)
    persona = {r.user_id: r.gold_preference for r in recs}
    assert sorted(mapping) == sorted(mapping.values()) == sorted(persona)  # a permutation
    assert all(user != donor for user, donor in mapping.items())
    assert all(persona[user] != persona[donor] for user, donor in mapping.items())


def test_derangement_is_seeded_and_ignores_the_input_order():
    recs = users(10)
    assert donors(recs, seed=5) == donors(list(reversed(recs)), seed=5)
    assert any(donors(recs, seed=s) != donors(recs, seed=5) for s in range(5))


def test_derangement_with_a_majority_persona_crosses_as_often_as_a_permutation_can():
    recs = [UserRecord(user_id=f"u{i}", history=[], gold_preference="A" if i < 7 else "B") for i in range(10)]
    mapping = donors(recs, seed=1)
    persona = {r.user_id: r.gold_preference for r in recs}
    assert all(user != donor for user, donor in mapping.items())
    crossing = Counter(persona[u] for u, d in mapping.items() if persona[u] != persona[d])
    assert crossing == {"B": 3, "A": 3}  # every B user gets an A donor; only 3 A users can get a B one


def test_derangement_without_personas_is_still_one():
    recs = [UserRecord(user_id=f"u{i}", history=[]) for i in range(5)]
    mapping = donors(recs, seed=2)
    assert sorted(mapping.values()) == sorted(mapping) and all(u != d for u, d in mapping.items())


# ------------------------------------------------------------------------------------- the interval
def test_paired_interval_on_known_outcomes():
    same = paired_difference([True] * 20 + [False] * 20, [True] * 20 + [False] * 20)
    assert (same.n, same.diff, same.ci_low, same.ci_high) == (40, 0.0, 0.0, 0.0)
    # 10 of 40 users right with a and wrong with b, the rest alike: diff 0.25, sd of the mean sqrt(.25*.75/40).
    a = [True] * 30 + [False] * 10
    b = [True] * 20 + [False] * 20
    d = paired_difference(a, b, seed=0)
    assert d.diff == pytest.approx(0.25)
    assert 0.10 <= d.ci_low <= 0.15 and 0.35 <= d.ci_high <= 0.40  # steps of 1/40
    assert paired_difference(a, b, seed=0) == d  # seeded
    always = paired_difference([True] * 5, [False] * 5)
    assert (always.diff, always.ci_low, always.ci_high) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([True], [True, False])


# -------------------------------------------------------------------------------------- the settings
def test_controls_separate_a_profile_that_carries_its_user(fake_backend, tmp_path):
    backend = make_backend(fake_backend)
    settings = ["none", "generic", "gold", "gold_mismatched", "full", "mismatched", "streaming",
                "streaming_mismatched"]
    results = evaluate(backend, tmp_path, settings)
    accuracy = {name: r["accuracy"] for name, r in results.items()}
    assert accuracy == {"none": 0.5, "generic": 0.5, "gold": 1.0, "gold_mismatched": 0.0, "full": 1.0,
                        "mismatched": 0.0, "streaming": 1.0, "streaming_mismatched": 0.0}
    rows = items(tmp_path)
    by = {(r["setting"], r["user_id"]): r for r in rows}
    gold = {u.user_id: u.gold_preference for u in users()}
    for user, own_gold in gold.items():
        donor = by[("mismatched", user)]["donor"]
        assert donor != user and gold[donor] != own_gold
        # The donor's own profile, exactly as its `full` item shows it; the same donor in every control.
        assert by[("mismatched", user)]["preference"] == by[("full", donor)]["preference"]
        assert by[("streaming_mismatched", user)]["preference"] == by[("streaming", donor)]["preference"]
        assert by[("gold_mismatched", user)]["preference"] == gold[donor]
        assert by[("streaming_mismatched", user)]["donor"] == by[("gold_mismatched", user)]["donor"] == donor
        assert by[("generic", user)]["preference"] == get_prompts().generic_preference()
    # Profiles are written once: 8 full ones and 8 x 2 streaming steps, none for the controls.
    assert generations(backend) == 8 + 16

    summary = json.loads((tmp_path / "summary.json").read_text())
    diffs = {(c["a"], c["b"]): c for c in summary["comparisons"]}
    assert diffs[("full", "none")]["diff"] == pytest.approx(0.5) and diffs[("full", "none")]["n"] == 8
    assert diffs[("full", "mismatched")]["diff"] == pytest.approx(1.0)
    assert diffs[("full", "mismatched")]["ci_low"] == pytest.approx(1.0)
    assert diffs[("streaming", "streaming_mismatched")]["diff"] == pytest.approx(1.0)
    assert diffs[("gold", "gold_mismatched")]["diff"] == pytest.approx(1.0)
    assert diffs[("gold", "none")]["ci_low"] <= 0.5 <= diffs[("gold", "none")]["ci_high"]
    assert all(set(c) >= {"benchmark", "variant", "a", "b", "n", "diff", "ci_low", "ci_high"}
               for c in summary["comparisons"])
    assert [g["value"] for g in summary["gain_recovered"]] == [pytest.approx(1.0)]
    # Tables list the controls beside what they control.
    assert [r["setting"] for r in summary["results"]] == ["none", "generic", "gold", "gold_mismatched", "full",
                                                          "mismatched", "streaming", "streaming_mismatched"]
    report = write_report([tmp_path], tmp_path / "report")["table"].read_text()
    assert "| full - mismatched | 8 | +100.0 | +100.0 to +100.0 |" in report
    assert "gain recovered" in report and "100%" in report


def test_a_control_run_alone_borrows_the_profiles_full_writes_later(fake_backend, tmp_path):
    backend = make_backend(fake_backend)
    evaluate(backend, tmp_path, ["mismatched"], cache=None)  # no cache: shared only through the run
    assert generations(backend) == 8
    evaluate(backend, tmp_path, ["full"], cache=None)
    assert generations(backend) == 16  # a new run, no cache: full writes its own (the same writer, same texts)
    by = {(r["setting"], r["user_id"]): r for r in items(tmp_path)}
    assert all(by[("mismatched", u)]["preference"] == by[("full", by[("mismatched", u)]["donor"])]["preference"]
               for u in (r.user_id for r in users()))


def test_a_control_after_full_reads_its_profiles_from_the_items(fake_backend, tmp_path):
    backend = make_backend(fake_backend)
    evaluate(backend, tmp_path, ["full"], cache=None)
    written = generations(backend)
    results = evaluate(backend, tmp_path, ["mismatched"], cache=None)
    assert generations(backend) == written  # nothing rewritten: items.jsonl holds the donors' profiles
    assert results["mismatched"]["accuracy"] == 0.0


def test_a_failed_donor_profile_fails_the_control(fake_backend, tmp_path):
    backend = fake_backend(reply_fn=lambda prompt: "<think>never closed", option_fn=judge_options)
    results = evaluate(backend, tmp_path, ["mismatched"])
    assert results["mismatched"]["failed"] == 8
    assert all("donor's profile failed" in r["error"] for r in items(tmp_path))


def test_generic_text_is_part_of_the_prompt_version(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    for source in BUILTIN.iterdir():
        (folder / source.name).write_text(source.read_text())
    assert PromptSet(folder).version.split("+")[1] == PromptSet().version.split("+")[1]
    (folder / "generic_preference.txt").write_text("The user likes anything.\n")
    changed = PromptSet(folder)
    assert changed.generic_preference() == "The user likes anything."
    assert changed.version.split("+")[1] != PromptSet().version.split("+")[1]


# -------------------------------------------------------------------------------------- likelihood
def test_likelihood_method_has_its_own_no_profile_baseline(fake_backend, tmp_path):
    class Scored(type(make_backend(fake_backend))):
        """log p(item | prompt): items that name the taste the system prompt names gain 2 nats."""

        def continuation_logprobs(self, prompts, continuations):
            self.calls.append(("continuations", prompts))
            out = []
            for prompt, item in zip(prompts, continuations):
                system = prompt[0]["content"]
                taste = next((t for t in TASTES if t in system), None)
                base = -5.0 if "GOOD" in item else -5.5  # the plain ranking leans to GOOD
                out.append(base + (2.0 if taste and taste in item else 0.0))
            return out

    backend = Scored(reply_fn=writer_reply, option_fn=judge_options)
    evaluation = Evaluation(Inferrer(backend), Judge(backend, method="likelihood"), EvalConfig(
        benchmark="psoups", settings=["none", "full", "mismatched"], out=tmp_path))
    results = {r["setting"]: r for r in evaluation.run(users())}
    assert {s: r["accuracy"] for s, r in results.items()} == {"none": 0.5, "full": 1.0, "mismatched": 0.0}
    assert all(r["variant"] == "method=likelihood" for r in results.values())
    none = [r for r in items(tmp_path) if r["setting"] == "none"]
    expected = 1 / (1 + math.exp(-0.5))  # two_way(-5, -5.5) for GOOD users
    assert sorted({round(r["p_true"], 6) for r in none}) == [round(1 - expected, 6), round(expected, 6)]


def test_gold_mismatched_always_borrows_another_persona(fake_backend, tmp_path):
    """Three users of one persona and one of the other: a one-to-one derangement must give two of the three a
    donor of their own persona; their gold control still reads the other persona's text."""
    recs = users(8)
    recs = [r for r in recs if r.gold_preference == "Prefers GOOD items."][:3] + [recs[1]]
    results = evaluate(make_backend(fake_backend), tmp_path, ["gold", "gold_mismatched"], recs=recs)
    assert results["gold_mismatched"]["failed"] == 0 and results["gold_mismatched"]["accuracy"] == 0.0
    gold = {r.user_id: r.gold_preference for r in recs}
    for item in (i for i in items(tmp_path) if i["setting"] == "gold_mismatched"):
        assert item["preference"] == gold[item["donor"]] != gold[item["user_id"]]
