import itertools
import json
import math

import pytest

from prefscribe.errors import InputError
from prefscribe.evaluate import EvalConfig, Evaluation, check_no_target_in_history, plan_history, write_report
from prefscribe.infer import Inferrer
from prefscribe.judge import Judge
from prefscribe.schema import Interaction, Target, UserRecord

from ..conftest import DATA


def logp(p: float) -> float:
    return math.log(p)


def make_judge_backend(fake_backend, profile_reply="The user likes GOOD things."):
    """Says 'A' with 0.9 when Item A contains GOOD and the preference mentions GOOD; 0.6 otherwise (a bias)."""
    def option_fn(prompt):
        content = prompt[1]["content"]
        item_a = content.split("## Item A\n")[1].split("\n")[0]
        informed = "## User's" in content and "GOOD" in content.split("## User's")[1]
        if informed:
            p = 0.9 if "GOOD" in item_a else 0.1
        else:
            p = 0.6
        return [logp(p), logp(1 - p)]
    return fake_backend(reply_fn=lambda prompt: profile_reply, option_fn=option_fn)


def records(n=4, gold="Prefers GOOD items."):
    out = []
    for i in range(n):
        history = [Interaction(context=f"q{i}-{j}", chosen=f"GOOD {i}-{j}", rejected=f"bad {i}-{j}") for j in range(4)]
        out.append(UserRecord(user_id=f"u{i}", history=history, gold_preference=gold,
                              target=Target(context=f"t{i}", chosen=f"GOOD target {i}", rejected=f"bad target {i}")))
    return out


def run(backend, tmp_path, settings, recs=None, **kw):
    evaluation = Evaluation(Inferrer(backend), Judge(backend), EvalConfig(benchmark="psoups", settings=settings,
                                                                          out=tmp_path, **kw))
    return evaluation.run(recs or records())


def test_settings_give_the_judge_what_they_promise(fake_backend, tmp_path):
    backend = make_judge_backend(fake_backend)
    results = {r["setting"]: r for r in run(backend, tmp_path, ["none", "gold", "raw", "full", "streaming"])}
    # none: the biased judge says A with 0.6 in both orders: p_true = (0.6 + 0.4) / 2 = 0.5 -> a tie -> "a"
    assert results["none"]["mean_p_true"] == pytest.approx(0.5)
    assert results["none"]["p_a_when_a_true"] == pytest.approx(0.6) and results["none"]["p_a_when_b_true"] == pytest.approx(0.6)
    for setting in ("gold", "raw", "full", "streaming"):
        assert results[setting]["accuracy"] == 1.0 and results[setting]["mean_p_true"] == pytest.approx(0.9)
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    gold = [i for i in items if i["setting"] == "gold"]
    assert all(i["preference"] == "Prefers GOOD items." for i in gold)  # gold is scored with the gold text
    raw = [i for i in items if i["setting"] == "raw"]
    assert all("CHOSEN ITEM BY THE USER: GOOD" in i["preference"] for i in raw)
    streaming = [i for i in items if i["setting"] == "streaming"]
    assert all(i["steps"] == 2 and i["covers"] == 4 for i in streaming)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["setting"] for r in summary["results"]} == {"none", "gold", "raw", "full", "streaming"}
    assert "| psoups |" in (tmp_path / "table.md").read_text()


def test_inference_failures_count_as_wrong_and_are_reported(fake_backend, tmp_path):
    backend = make_judge_backend(fake_backend, profile_reply="<think>never closed")
    [result] = run(backend, tmp_path, ["full"])
    assert result["accuracy"] == 0.0 and result["failed"] == 4 and result["n"] == 4
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert all("no </think>" in i["error"] and i["raw"] for i in items)


def test_rerun_resumes_without_new_model_calls(fake_backend, tmp_path):
    backend = make_judge_backend(fake_backend)
    first = run(backend, tmp_path, ["none", "full"])
    calls = len(backend.calls)
    again = run(backend, tmp_path, ["none", "full"])
    assert len(backend.calls) == calls and again == first
    lines = (tmp_path / "items.jsonl").read_text().splitlines()
    assert len(lines) == 8
    # Another judge in the same folder is new work, kept apart in the summary.
    other = make_judge_backend(fake_backend)
    other.info.spec = "fake:other-judge"
    evaluation = Evaluation(Inferrer(backend), Judge(other), EvalConfig(
        benchmark="psoups", settings=["none"], out=tmp_path))
    results = evaluation.run(records())
    assert sorted((r["judge"], r["setting"]) for r in results) == [
        ("fake:other-judge", "none"), ("fake:test", "full"), ("fake:test", "none")]
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == 12


def test_random_order_shows_the_bias_both_orders_remove(fake_backend, tmp_path):
    backend = make_judge_backend(fake_backend)
    evaluation = Evaluation(Inferrer(backend), Judge(backend, orders="random", seed=1),
                            EvalConfig(benchmark="psoups", settings=["none"], out=tmp_path))
    [result] = evaluation.run(records(40))
    # Single random order, judge says A (0.6) regardless: right exactly when the true item was shown first.
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert all(i["correct"] == i["orders"][0]["true_first"] for i in items)
    assert all(i["variant"] == "order=random" for i in items) and result["variant"] == "order=random"
    assert 0.2 < result["accuracy"] < 0.8


def test_target_in_history_is_refused():
    leaky = records(1)[0]
    leaky.history.append(Interaction(chosen="GOOD target 0", rejected="x"))
    with pytest.raises(InputError, match="target item appears"):
        check_no_target_in_history([leaky])


def test_recommendation_sets_use_the_reference_thirds():
    user = UserRecord(user_id="u", history=[Interaction(chosen=str(i)) for i in range(10)],
                      target=Target(chosen="t", rejected="r"))
    plan = plan_history(user, "movielens", segments=2)
    assert [h.chosen for h in plan.full] == [str(i) for i in range(6)]
    assert [[h.chosen for h in s] for s in plan.segments] == [["0", "1", "2"], ["3", "4", "5"]]
    dialogue = plan_history(records(1)[0], "psoups", segments=2)
    assert len(dialogue.full) == 4 and [len(s) for s in dialogue.segments] == [2, 2]


@pytest.mark.skipif(not (DATA / "psoups").exists(), reason="needs ../shared/data (set PREFSCRIBE_DATA)")
def test_real_benchmarks_never_put_a_target_in_history():
    from prefscribe.data import load

    for name, path, opts in [("psoups", "psoups/student_phd.json", {}), ("movielens", "movielens", {}),
                             ("mind", "mind/sample400by_ratio.csv", {}), ("amazon", "amazon_games", {})]:
        check_no_target_in_history(load(name, DATA / path, limit=50, seed=0, **opts))


def test_report_combines_runs_and_draws_plots(fake_backend, tmp_path):
    backend = make_judge_backend(fake_backend)
    run(backend, tmp_path / "a", ["none", "full"])
    run(backend, tmp_path / "b", ["gold"])
    files = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "report")
    table = files["table"].read_text()
    assert "| none |" in table and "| gold |" in table and "100.0 (n=4)" in table
    assert files["accuracy"].stat().st_size > 1000


def test_report_plots_variant_only_runs_and_skips_an_empty_plot(fake_backend, tmp_path):
    from prefscribe.evaluate.report import plot_accuracy

    backend = make_judge_backend(fake_backend)
    run(backend, tmp_path / "random", ["none", "gold"], variant="order=random")
    files = write_report([tmp_path / "random"], tmp_path / "report")
    assert "| order=random |" in files["table"].read_text() and files["accuracy"].stat().st_size > 1000
    assert files["bias"].stat().st_size > 1000
    assert plot_accuracy([], tmp_path / "empty.png") is None and not (tmp_path / "empty.png").exists()


def test_cost_table_compares_tokens_per_user(fake_backend, tmp_path):
    from prefscribe.evaluate.report import cost_table

    base = {"benchmark": "mind", "model": "m", "variant": ""}
    results = [{**base, "setting": "full", "n": 4, "prompt_tokens": 4000, "completion_tokens": 40},
               {**base, "setting": "streaming", "n": 2, "prompt_tokens": 1600, "completion_tokens": 40,
                "last_step_prompt_tokens": 500},
               {**base, "setting": "none", "n": 4, "prompt_tokens": 0, "completion_tokens": 0}]
    [row] = cost_table(results).splitlines()[2:]
    assert row == "| mind | m | - | 1000 | 800 | 250 | 0.25 | 10 / 20 |"
    assert cost_table(results[2:]) == ""
    # From a real run: the last streaming step is counted once per user, and is part of all the steps.
    run(make_judge_backend(fake_backend), tmp_path, ["full", "streaming"])
    summary = {r["setting"]: r for r in json.loads((tmp_path / "summary.json").read_text())["results"]}
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    stream = [i for i in items if i["setting"] == "streaming"]
    assert all(i["steps"] == 2 and 0 < i["last_step_prompt_tokens"] < i["prompt_tokens"] for i in stream)
    assert summary["streaming"]["last_step_prompt_tokens"] == sum(i["last_step_prompt_tokens"] for i in stream)
    assert summary["full"]["last_step_prompt_tokens"] == summary["full"]["prompt_tokens"]


def test_validated_writer_keeps_the_candidate_that_reads_the_users_pairs_and_records_its_score(fake_backend,
                                                                                             tmp_path):
    from prefscribe.validate import ValidatedInferrer

    # Candidate 0 (seed 0) names nothing the judge can use; candidate 1 (seed 1) names GOOD. Validation on the
    # users' own history pairs keeps candidate 1, so `full` is right where the unvalidated writer was not.
    written = itertools.count(1)
    backend = make_judge_backend(fake_backend)
    backend.reply_fn = lambda prompt: "The user likes GOOD things." if next(written) > 4 else "The user likes things."
    writer = ValidatedInferrer(backend, judge=Judge(backend), candidates=2)
    evaluation = Evaluation(writer, Judge(backend), EvalConfig(benchmark="psoups", settings=["full"], out=tmp_path))
    (full,) = evaluation.run(records())
    assert full["accuracy"] == 1.0
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert all(i["preference"] == "The user likes GOOD things." for i in items)
    assert all(i["validation"] == pytest.approx(0.9) for i in items)
    assert all(i["model"] == "fake:test k=2 by fake:test" for i in items)
