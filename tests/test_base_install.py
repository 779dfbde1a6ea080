"""A base install, as `pip install prefscribe` makes it: the wheel built from this tree, installed without
extras in a fresh venv (its dependencies pinned by requirements/dev.lock), and every CLI command run in it.
Each must exit 0 or say in one line which extra it needs, never end in a traceback.

Slow-ish (the base dependencies include torch: pip's cache and the machine's wheels keep it to a minute or
two, and --no-compile skips byte-compiling them); it skips only when the wheel cannot be built or installed
for want of a package index, which CI has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import typer.main

from prefscribe.cli import app

pytestmark = pytest.mark.timeout(1200)  # a hang guard only
REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "dev.lock"

# Every command, as `prefscribe --help` lists it, with minimal arguments, and the extra it needs (None: runs
# on a base install; those run with --help, since running them for real loads a model).
COMMANDS: dict[str, tuple[list[str], str | None]] = {
    "infer": (["--help"], None),
    "choose": (["--help"], None),
    "respond": (["--help"], None),
    "demo": (["--help"], None),
    "synth": (["--help"], None),
    "prune": (["--help"], None),
    "serve": (["--db", "sqlite:///profiles.db", "--port", "9"], "serve"),
    "worker": (["--db", "sqlite:///profiles.db", "--once"], "serve"),
    "keys create": (["--tenant", "acme", "--db", "sqlite:///profiles.db"], "serve"),
    "keys list": (["--db", "sqlite:///profiles.db"], "serve"),
    "keys revoke": (["psk_AbCdEfGh", "--db", "sqlite:///profiles.db"], "serve"),
    "db upgrade": (["--db", "sqlite:///profiles.db"], "serve"),
    "train sft": (["--config", str(REPO / "configs" / "sft.yaml")], "train"),
    "train direct": (["--config", str(REPO / "configs" / "direct.yaml")], "train"),
    "train rl": (["--config", str(REPO / "configs" / "rl.yaml")], "train"),
    "train plot": (["train_log.jsonl"], "train"),
    "eval": (["--help"], None),  # reads the benchmark, then runs a model, before it needs its extra
    "report": (["--help"], None),  # the same, on an evaluation's run folders
    "compare": (["--help"], None),  # the same
    "batch": (["--interactions", "history.jsonl", "--out", "batch-out"], "batch"),
    "calibrate": (["--help"], None),  # loads a model and reads benchmarks; measuring needs no extra
    "persona-set": (["--help"], None),  # writes replies with a model
    "export": (["u1", "--db", "sqlite:///profiles.db", "--tenant", "acme"], "serve"),
    "import": (["user.json", "--db", "sqlite:///profiles.db", "--tenant", "acme"], "serve"),
    "mcp": (["--db", "sqlite:///profiles.db", "--tenant", "acme"], "mcp"),
}
# A valid, empty prefscribe export: `import` reads its file before it opens the store.
EXPORT = '{"format": "prefscribe.user", "format_version": 1, "user_id": "u1", "versions": [], "interactions": []}\n'


def cli_commands() -> set[str]:
    """Every leaf command of the CLI, by its words ("keys create")."""
    def walk(command, prefix: str) -> set[str]:
        subs = getattr(command, "commands", None)
        if not subs:
            return {prefix}
        return set().union(*(walk(sub, f"{prefix} {name}".strip()) for name, sub in subs.items()))
    return walk(typer.main.get_command(app), "")


def test_every_command_has_a_smoke_case():
    assert cli_commands() == set(COMMANDS)


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def clean_env() -> dict[str, str]:
    """This environment without what would reach past the venv: PYTHONPATH (a source tree would count as an
    installed prefscribe) and the service's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PREFSCRIBE_"))}
    return env | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base-install")
    # Built from a copy: a build writes build/ and *.egg-info beside the sources it is given.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "src"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
                                            if (REPO / name).is_dir() else {}))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                  str(root / "dist"), str(source)], env=clean_env())
    if built.returncode != 0:
        pytest.skip(f"the wheel cannot be built here: {built.stderr.strip().splitlines()[-1:]}")
    wheel = next((root / "dist").glob("prefscribe-*.whl"))
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
                      "-c", str(LOCK), str(wheel)], env=clean_env())
    if installed.returncode != 0:
        tail = installed.stderr.strip().splitlines()[-3:]
        if any("No matching distribution" in line or "connection" in line.lower() for line in tail):
            pytest.skip(f"the base dependencies cannot be installed here: {tail}")
        pytest.fail(f"pip install of the wheel failed: {installed.stderr}")
    assert (root / "venv" / "bin" / "prefscribe").exists(), installed.stdout + installed.stderr
    return root / "venv"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_base_install_runs_or_names_the_extra(base_venv, command, tmp_path):
    args, extra = COMMANDS[command]
    env = clean_env() | {"COLUMNS": "80"}  # a narrow terminal: a one-line error must stay one line
    (tmp_path / "train_log.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "user.json").write_text(EXPORT)
    r = _run([str(base_venv / "bin" / "prefscribe"), *command.split(), *args], cwd=tmp_path, env=env, timeout=300)
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    if extra is None:
        assert r.returncode == 0, out
        return
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert r.returncode != 0 and len(errors) == 1 and r.stderr.rstrip().endswith(errors[0]), out
    assert f"pip install 'prefscribe[{extra}]'" in errors[0], out
