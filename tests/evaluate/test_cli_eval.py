import json

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app

from ..conftest import DATA

runner = CliRunner()
needs_data = pytest.mark.skipif(not (DATA / "psoups").exists(), reason="needs ../shared/data (set PREFSCRIBE_DATA)")


@needs_data
def test_eval_cli_on_real_psoups_with_a_tiny_model(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", str(DATA / "psoups/student_phd.json"),
                                 "--settings", "none,gold,full", "--model", f"hf:{tiny_model_dir}", "--limit", "4",
                                 "--max-new-tokens", "8", "--style", "direct", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["setting"]: r for r in summary["results"]}
    assert set(rows) == {"none", "gold", "full"} and all(r["n"] == 4 for r in rows.values())
    assert summary["run"]["seed"] == 0 and summary["run"]["limit"] == 4
    assert (out / "accuracy.png").exists() and (out / "report.md").exists()
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    personas = {i["preference"] for i in items if i["setting"] == "gold"}
    assert len(personas) == 2  # stratified sample: both personas


@needs_data
def test_random_order_runs_are_kept_apart_from_both_order_runs(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    base = ["eval", "--benchmark", "psoups", "--data", str(DATA / "psoups/student_phd.json"), "--settings", "none",
            "--model", f"hf:{tiny_model_dir}", "--limit", "3", "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, [*base, "--order", "random"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert sorted((r["variant"], r["n"]) for r in rows) == [("", 3), ("order=random", 3)]
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert sorted(len(i["orders"]) for i in items) == [1, 1, 1, 2, 2, 2]


def test_eval_cli_names_a_missing_file(tmp_path):
    result = runner.invoke(app, ["eval", "--benchmark", "movielens", "--data", str(tmp_path / "nowhere"),
                                 "--out", str(tmp_path / "run"), "--model", "hf:/x"])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_eval_cli_rejects_unknown_settings(tmp_path):
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", "x", "--settings", "none,magic",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "magic" in result.output


@needs_data
def test_eval_cli_runs_the_controls_and_the_likelihood_method(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    base = ["eval", "--benchmark", "psoups", "--data", str(DATA / "psoups/student_phd.json"), "--limit", "4",
            "--model", f"hf:{tiny_model_dir}", "--max-new-tokens", "8", "--style", "direct", "--out", str(out)]
    result = runner.invoke(app, [*base, "--settings", "none,gold,gold_mismatched,generic,full,mismatched"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*base, "--settings", "none,full,mismatched", "--method", "likelihood"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert sorted((r["variant"], r["setting"]) for r in summary["results"] if r["n"] == 4) == sorted(
        [("", s) for s in ("none", "gold", "gold_mismatched", "generic", "full", "mismatched")]
        + [("method=likelihood", s) for s in ("none", "full", "mismatched")])
    pairs = {(c["variant"], c["a"], c["b"]) for c in summary["comparisons"]}
    assert {("", "full", "mismatched"), ("", "gold", "gold_mismatched"), ("method=likelihood", "full", "none"),
            ("method=likelihood", "full", "mismatched")} <= pairs
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    full = {i["user_id"]: i["preference"] for i in items if i["setting"] == "full" and not i["variant"]}
    for item in (i for i in items if i["setting"] == "mismatched"):
        assert item["donor"] != item["user_id"] and item["preference"] == full[item["donor"]]
    gold = {i["user_id"]: i["preference"] for i in items if i["setting"] == "gold"}
    for item in (i for i in items if i["setting"] == "gold_mismatched"):
        assert item["preference"] == gold[item["donor"]] != gold[item["user_id"]]
    assert "Paired comparisons" in (out / "report.md").read_text()


def test_eval_cli_rejects_an_unknown_method(tmp_path):
    result = runner.invoke(app, ["eval", "--benchmark", "psoups", "--data", "x", "--settings", "mismatched",
                                 "--method", "sampling", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--method" in result.output


@needs_data
def test_eval_cli_builds_noise_and_positive_only_variants(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "mind", "--data", str(DATA / "mind/sample400by_ratio.csv"),
                                 "--settings", "none", "--model", f"hf:{tiny_model_dir}", "--limit", "2",
                                 "--positive-only", "--noise-from", f"movielens:{DATA / 'movielens'}",
                                 "--noise", "0,0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert sorted((r["variant"], r["n"]) for r in rows) == [("noise=0,positive-only", 2),
                                                            ("noise=0.5,positive-only", 2)]


@pytest.mark.skipif(not (DATA / "dsp").exists(), reason="needs ../shared/data/dsp (set PREFSCRIBE_DATA)")
def test_eval_cli_on_real_dsp_with_the_gold_controls(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "dsp", "--data", str(DATA / "dsp"), "--limit", "4",
                                 "--settings", "none,gold,gold_mismatched", "--model", f"hf:{tiny_model_dir}",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    gold = {i["user_id"]: i["preference"] for i in items if i["setting"] == "gold"}
    assert len(set(gold.values())) == 4  # one user of each persona
    for item in (i for i in items if i["setting"] == "gold_mismatched"):
        assert item["user_id"].split("_")[1] != item["donor"].split("_")[1]
        assert item["preference"] == gold[item["donor"]]
    comparisons = json.loads((out / "summary.json").read_text())["comparisons"]
    assert ("gold", "gold_mismatched") in {(c["a"], c["b"]) for c in comparisons}


def _accuracy(run, setting):
    items = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    rows = [i for i in items if i["setting"] == setting]
    return 100 * sum(bool(i["correct"]) for i in rows) / len(rows)


@needs_data
def test_compare_pairs_two_runs_user_by_user(tiny_model_dir, tmp_path):
    base = ["eval", "--benchmark", "psoups", "--data", str(DATA / "psoups/student_phd.json"), "--limit", "6",
            "--model", f"hf:{tiny_model_dir}", "--style", "direct", "--settings", "none,full,mismatched"]
    for name, tokens in (("a", "4"), ("b", "12")):  # another profile length: a change of writer
        result = runner.invoke(app, [*base, "--max-new-tokens", tokens, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"),
                                 "--out", str(tmp_path / "c.md")])
    assert result.exit_code == 0, result.output
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in result.output.splitlines()
            if line.startswith("| ")}
    assert "psoups: 6 users both judged" in result.output
    for setting in ("none", "full", "mismatched"):
        _, reference, run, diff = rows[f"accuracy {setting}"]
        assert float(reference) == pytest.approx(_accuracy(tmp_path / "a", setting), abs=0.05)
        assert float(run) == pytest.approx(_accuracy(tmp_path / "b", setting), abs=0.05)
        assert float(diff.split(" (")[0]) == pytest.approx(float(run) - float(reference), abs=0.11)
    _, reference, run, _ = rows["own - another's"]
    own = _accuracy(tmp_path / "a", "full") - _accuracy(tmp_path / "a", "mismatched")
    assert float(reference) == pytest.approx(own, abs=0.05)
    assert rows["accuracy none"][3].startswith("+0.0 (+0.0 to +0.0)")  # no profile: same judge, same answers
    assert (tmp_path / "c.md").read_text() == result.output.rstrip("\n") + "\n"

    same = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "a")])
    assert same.exit_code == 0 and "100% of 18" in same.output


def test_compare_names_a_run_it_cannot_read(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "items.jsonl").write_text('{"benchmark": "psoups", "setting": "none"}\n{"benchmark": "ps\n')
    result = runner.invoke(app, ["compare", str(run), str(run)])
    assert result.exit_code == 2 and "items.jsonl:2" in result.output and "not JSON" in result.output
