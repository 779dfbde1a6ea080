import json

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app

runner = CliRunner()


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = [{"context": "Why?", "chosen": f"Because {i}.", "rejected": f"No {i}."} for i in range(4)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_infer_json_then_update_then_choose(tiny_model_dir, history, tmp_path):
    model = f"hf:{tiny_model_dir}"
    result = run("infer", history, "--model", model, "--style", "direct", "--max-new-tokens", "12", "--json")
    out = json.loads(result.stdout)
    if result.exit_code == 0:
        assert set(out) >= {"profile", "reasoning", "model", "prompt_version", "covers", "usage"}
        assert out["covers"] == 4 and out["model"] == model and out["usage"]["prompt_tokens"] > 0
    else:  # a random model may not finish a sentence: the failure is explicit and keeps the raw reply
        assert result.exit_code == 1 and out["error"] and "raw" in out
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"profile": "Likes short answers.", "covers": 4, "model": model}))
    choice = run("choose", "--profile", profile, "--context", "Why?", "--a", "Because.", "--b", "No.",
                 "--model", model, "--json")
    assert choice.exit_code == 0, choice.output
    data = json.loads(choice.stdout)
    assert data["choice"] in ("a", "b") and data["method"] == "logprobs"
    assert data["p_a"] + data["p_b"] == pytest.approx(1.0) and len(data["orders"]) == 2
    plain = tmp_path / "profile.txt"
    plain.write_text("Likes short answers.")
    assert run("choose", "--profile", plain, "--a", "x", "--b", "y", "--model", model).exit_code == 0


def test_bad_history_exits_2_with_file_line_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chosen": "ok"}\n{"context": "q"}\n')
    result = run("infer", bad, "--model", "hf:/nonexistent")
    assert result.exit_code == 2
    assert f"{bad}:2" in result.output and "chosen" in result.output


def test_bad_model_spec_exits_2(history):
    result = run("infer", history, "--model", "gpt-9")
    assert result.exit_code == 2 and "unknown model spec" in result.output


def test_progress_bars_grow_a_bar_whose_description_comes_again(monkeypatch):
    import io

    from rich.console import Console
    from rich.progress import Progress

    from prefscribe.cli import options

    shown: list[Progress] = []

    def quiet_progress():
        shown.append(Progress(console=Console(file=io.StringIO())))
        return shown[-1]

    monkeypatch.setattr(options, "_progress", quiet_progress)
    with options.progress_bars() as new_bar:
        first = new_bar("targets", 3)
        first(3)
        again = new_bar("targets", 2)  # the next chunk of users: the same bar, now out of 5
        again(1)
        new_bar("generate", 4)
    [progress] = shown
    assert [(t.description, t.total, t.completed) for t in progress.tasks] == [("targets", 5, 4), ("generate", 4, 0)]
