import json

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app
from prefscribe.llm import load_backend, register

runner = CliRunner()


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = [{"context": "Why?", "chosen": f"Because {i}.", "rejected": f"No {i}."} for i in range(4)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def scripted(fake_backend):
    """`--model scripted:<name>` for the CLI: a FakeBackend registered as a plugin kind would be."""
    backends = {}

    def make(name: str, **kwargs) -> str:
        backends[name] = fake_backend(**kwargs)
        return f"scripted:{name}"

    register("scripted", lambda spec: backends[spec.name])
    load_backend.cache_clear()
    yield make
    load_backend.cache_clear()


def test_infer_json_then_update(scripted, history, tmp_path):
    model = scripted("writer", reply_fn=lambda prompt: "Likes short answers.")
    result = run("infer", history, "--model", model, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"profile", "reasoning", "model", "prompt_version", "covers", "usage"}
    assert out["profile"] == "Likes short answers." and out["covers"] == 4 and out["usage"]["prompt_tokens"] > 0
    past = tmp_path / "profile.json"
    past.write_text(result.stdout)
    update = run("infer", history, "--past", past, "--model", model, "--json")
    assert update.exit_code == 0 and json.loads(update.stdout)["covers"] == 8


def test_a_failed_inference_exits_1_and_keeps_the_raw_reply(scripted, history):
    model = scripted("thinker", reply_fn=lambda prompt: "<think>never closed", thinks=True)
    result = run("infer", history, "--model", model, "--json")
    out = json.loads(result.stdout)
    assert result.exit_code == 1 and "think" in out["error"] and out["raw"] == "<think>never closed"


def test_choose_on_a_real_model_without_a_loading_bar(tiny_model_dir, tmp_path):
    model = f"hf:{tiny_model_dir}"
    load_backend.cache_clear()  # this test loads the model: the bar would show then
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"profile": "Likes short answers.", "covers": 4, "model": model}))
    choice = run("choose", "--profile", profile, "--context", "Why?", "--a", "Because.", "--b", "No.",
                 "--model", model, "--json", "--no-cache")
    assert choice.exit_code == 0, choice.output
    data = json.loads(choice.stdout)
    assert data["choice"] in ("a", "b") and data["method"] == "logprobs"
    assert data["p_a"] + data["p_b"] == pytest.approx(1.0) and len(data["orders"]) == 2
    assert "Loading weights" not in choice.output
    plain = tmp_path / "profile.txt"
    plain.write_text("Likes short answers.")
    assert run("choose", "--profile", plain, "--a", "x", "--b", "y", "--model", model).exit_code == 0


def _prefers_cats(prompt):
    text = prompt[1]["content"]
    cats_first = text.index("cats") < text.index("dogs")
    likes_cats = "Likes cats" in text
    return [-0.1, -3.0] if cats_first == likes_cats else [-3.0, -0.1]


@pytest.mark.parametrize("how", ["file", "stdin", "text"])
def test_choose_takes_the_profile_from_a_file_stdin_or_the_command_line(scripted, tmp_path, how):
    model = scripted("judge", option_fn=_prefers_cats)
    profile = tmp_path / "p.txt"
    profile.write_text("Likes cats.")
    given = {"file": ["--profile", profile], "stdin": ["--profile", "-"], "text": ["--profile-text", "Likes cats."]}
    args = ["choose", "--a", "dogs", "--b", "cats", "--model", model, "--json", *given[how]]
    result = runner.invoke(app, [str(a) for a in args], input="Likes cats." if how == "stdin" else None)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["choice"] == "b"  # cats, which only the profile asks for


def test_a_profile_file_and_text_together_is_bad_input(scripted, tmp_path):
    result = run("choose", "--a", "x", "--b", "y", "--profile", tmp_path / "p.txt", "--profile-text", "P",
                 "--model", scripted("unused"))
    assert result.exit_code == 2 and "not both" in result.output


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


def test_progress_written_to_a_log_prints_a_line_each_tenth(monkeypatch):
    import io

    from rich.console import Console

    from prefscribe.cli import options

    log = io.StringIO()  # not a terminal: a live bar would stay blank until the end
    monkeypatch.setattr(options, "console", Console(file=log, width=200))
    with options.progress_bar("scoring", 20) as advance:
        for _ in range(20):
            advance(1)
    lines = [line for line in log.getvalue().splitlines() if line.startswith("scoring: ")]
    assert [line.split()[1] for line in lines] == [f"{k}/20" for k in range(2, 21, 2)]
    assert all(" after " in line for line in lines)


# One bad input per command: each exits 2 with one "error:" line, before any model loads.
BAD_INPUT = {
    "infer": (["infer", "missing.jsonl"], "file not found"),
    "choose": (["choose", "--a", "x", "--b", "y", "--method", "bogus"], "--method must be"),
    "respond": (["respond", "--context", "hi", "--profile", "missing.txt"], "file not found"),
    "demo": (["demo", "--model", "gpt-9"], "unknown model spec"),
    "serve": (["serve", "--db", "nosuchdb://x"], "unsupported database"),
    "worker": (["worker", "--db", "nosuchdb://x", "--once"], "unsupported database"),
    "keys create": (["keys", "create", "--tenant", " ", "--db", "sqlite:///{tmp}/k.db"], "tenant"),
    "db upgrade": (["db", "upgrade", "--db", "nosuchdb://x"], "unsupported database"),
    "keys list": (["keys", "list", "--db", "nosuchdb://x"], "unsupported database"),
    "export": (["export", "u1", "--tenant", "t", "--format", "yaml", "--db", "sqlite:///{tmp}/e.db"],
               "unknown format"),
    "import": (["import", "missing.json", "--tenant", "t", "--db", "sqlite:///{tmp}/e.db"], "file not found"),
    "keys revoke": (["keys", "revoke", "abc", "--db", "nosuchdb://x"], "unsupported database"),
    "train sft": (["train", "sft", "--config", "missing.yaml"], "not found"),
    "train direct": (["train", "direct", "--config", "missing.yaml"], "not found"),
    "train rl": (["train", "rl", "--config", "missing.yaml"], "not found"),
    "train plot": (["train", "plot", "missing.jsonl"], "no training log"),
    "synth": (["synth", "--data", "missing.jsonl", "--benchmark", "psoups", "--out", "o.jsonl"], "no such file"),
    "prune": (["prune", "--data", "missing.jsonl", "--benchmark", "psoups", "--out", "o.jsonl", "--preset", "amazon"],
              "no such file"),
    "eval": (["eval", "--benchmark", "psoups", "--settings", "bogus", "--out", "o"], "unknown setting"),
    "report": (["report", "missing_dir"], "no summary.json"),
    "compare": (["compare", "missing_a", "missing_b"], "no items.jsonl"),
    "calibrate": (["calibrate", "--source", "psoups", "--out", "t.json"], "write --source as"),
    "persona-set": (["persona-set", "--out", "o", "--prompts-from", "missing.txt"], "questions file not found"),
    "batch": (["batch", "--interactions", "missing/*.jsonl", "--out", "o"], "no file matches"),
    "mcp": (["mcp", "--tenant", "acme", "--db", "nosuchdb://x"], "unsupported database"),
}


def _command_paths(command, prefix=()):
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*prefix, name))
    else:
        yield " ".join(prefix)


def test_every_command_has_a_bad_input_case():
    import typer

    assert set(_command_paths(typer.main.get_command(app))) == set(BAD_INPUT)


@pytest.mark.parametrize("command", list(BAD_INPUT))
def test_bad_input_exits_2_with_a_one_line_error(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFSCRIBE_DATA", str(tmp_path))  # "missing" files are missing there too
    args, expected = BAD_INPUT[command]
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert result.exit_code == 2, result.output
    assert len(errors) == 1 and errors[0].startswith("error: ") and expected in errors[0], result.output
    assert "Traceback" not in result.output


def test_calibrate_writes_a_table_of_centred_scores_on_real_users(tiny_model_dir, tmp_path):
    from prefscribe.measure import read

    from .conftest import DATA

    model = f"hf:{tiny_model_dir}"
    out = tmp_path / "table.json"
    result = run("calibrate", "--source", f"psoups:{DATA / 'psoups' / 'student_phd.json'}", "--users", "4",
                 "--max-comparisons", "4", "--model", model, "--out", out, "--centred", "--no-cache")
    assert result.exit_code == 0, result.output
    table = read(out)
    assert table.vocabulary.endswith("+centred") and table.source["users"] == {"psoups": 4}
    means = [s.mean for name, s in table.stats.items() if name.startswith("replies:")]
    # Each comparison's centred scores sum to 0 over the qualities, so their means do too.
    assert len(means) > 10 and sum(means) == pytest.approx(0.0, abs=1e-6) and any(abs(m) > 1e-4 for m in means)
