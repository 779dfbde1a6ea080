"""`prefscribe synth` and `prefscribe prune` through the CLI, on real P-Soups users and the tiny model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prefscribe.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_synth_writes_records_funnel_and_journal(tiny_model_dir, data_root, tmp_path, monkeypatch):
    from prefscribe.llm.hf import torch_engine

    monkeypatch.setenv("PREFSCRIBE_DATA", str(data_root))
    model = f"hf:{tiny_model_dir}"
    out = tmp_path / "sft.jsonl"
    args = ["synth", "--data", "psoups/student_phd.json", "--benchmark", "psoups", "--teacher", model,
            "--out", out, "--streaming", "--limit", "2", "--include-target", "--min-segment", "1",
            "--min-valid", "1", "--tract-threshold", "0", "--max-new-tokens", "16", "--max-history-tokens", "300",
            "--json"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((tmp_path / "sft.funnel.json").read_text())
    # Models are recorded with their engine (the dtype they ran in): hf:<path>+torch or +torch-fp32.
    canonical = f"{model}+{torch_engine()}"
    assert report["users"] == 2 and report["models"]["teacher"] == canonical == report["models"]["scorer"]
    assert report["config"]["min_segment"] == 1 and report["data"]["limit"] == 2
    rows = {(r["pass"], r["stage"], r["unit"]): r for r in report["stages"]}
    assert rows[("all", "segment", "users")]["kept"] == 2
    # 5 interactions (4 + the target) -> segments 2, 2, 1: two next-segment interactions per user, unless
    # the tiny tokenizer's long token counts push a user's first segment over the 300-token cap.
    users_in = rows[("scratch", "targets", "users")]
    too_long = users_in["dropped"].get("an interaction exceeds max_history_tokens", 0)
    assert users_in["in"] == 2 and set(users_in["dropped"]) <= {"an interaction exceeds max_history_tokens"}
    targets = rows[("scratch", "targets", "candidates")]
    assert targets["in"] == 2 * (2 - too_long)
    assert targets["kept"] + targets["dropped"].get("repeats an earlier interaction", 0) == targets["in"]
    # A random tiny model never closes </think> within 16 tokens: every candidate is dropped, and said why.
    generate = rows[("scratch", "generate", "candidates")]
    assert generate["in"] == targets["kept"] > 0 and generate["kept"] == 0
    assert set(generate["dropped"]) <= {"no </think> in the reply (cut off by the token limit)",
                                        "no </think> in the reply (the model never closed it)"}
    assert report["records"]["total"] == 0 and out.read_text() == ""
    assert "SFT synthesis funnel" in result.output
    journal = (tmp_path / "sft.journal.jsonl").read_text().splitlines()
    assert len(journal) == 3
    # Resumed: both users come from the journal.
    again = run(*args)
    assert again.exit_code == 0 and json.loads(again.stdout)["resumed_users"] == 2


def test_prune_writes_rl_records_scores_and_histograms(tiny_model_dir, data_root, tmp_path):
    model = f"hf:{tiny_model_dir}"
    out = tmp_path / "rl.jsonl"
    result = run("prune", "--data", data_root / "psoups" / "student_phd.json", "--benchmark", "psoups",
                 "--weak", model, "--strong", model, "--alpha", "1", "--tract", "0,1", "--limit", "2",
                 "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Weak == strong: S_learn is 0 everywhere, so the whole top share ties and every point is kept.
    assert report["after_alpha"] == report["points"] == report["scored"] >= 6
    assert report["records"] == 2 and report["tract_band"] == [0.0, 1.0]
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == 2 and all(0 < r["k"] < r["K"] for r in records)
    scores = [json.loads(x) for x in (tmp_path / "rl.scores.jsonl").read_text().splitlines()]
    assert len(scores) == report["points"] and all(0 < s["p_strong"] < 1 and s["s_learn"] == 0 for s in scores)
    assert (tmp_path / "rl.hist.png").read_bytes()[:4] == b"\x89PNG"


def test_prune_needs_settings(tmp_path, data_root):
    path = data_root / "psoups" / "student_phd.json"
    missing = run("prune", "--data", path, "--benchmark", "psoups", "--out", tmp_path / "rl.jsonl")
    assert missing.exit_code == 2 and "--preset" in missing.output
    bad = run("prune", "--data", path, "--benchmark", "psoups", "--out", tmp_path / "rl.jsonl", "--alpha", "0.1",
              "--tract", "0.5")
    assert bad.exit_code == 2 and "LOW,HIGH" in bad.output
