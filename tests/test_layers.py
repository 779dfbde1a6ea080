"""The layers of DESIGN.md hold: `lint-imports` keeps every contract of pyproject.toml's [tool.importlinter],
and breaks the right one when a module imports upward, a front end imports another, or a new package is
left out of the layers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytest.importorskip("importlinter", reason="the contracts need the dev extra: pip install 'prefscribe[dev]'")

LAYERS = "prefscribe's layers (DESIGN.md)"
SERVICE = "no module outside service/ imports service"


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `src`, with the project's contracts."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(src)}
    args = [sys.executable, "-c", code, "--no-cache", "--no-logo", str(REPO / "pyproject.toml")]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def _verdicts(output: str) -> dict[str, str]:
    """Each contract's verdict (KEPT or BROKEN) from the report's summary, by the start of its name."""
    summary = " ".join(output.split()).split("Contracts: ", 1)[0]
    return {name: re.search(re.escape(name) + r".*?\b(KEPT|BROKEN)\b", summary).group(1)
            for name in (LAYERS, SERVICE)}


def test_the_package_keeps_every_contract():
    result = lint_imports(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and _verdicts(result.stdout) == {LAYERS: "KEPT", SERVICE: "KEPT"}


@pytest.mark.parametrize("path, source, broken, named", [
    # the store importing the update engine: upward
    ("store/_upward.py", "from ..updates import Worker\n", {LAYERS},
     "prefscribe.store._upward -> prefscribe.updates"),
    # the batch front end importing the service: siblings, and the service is a front end
    ("batch/_sideways.py", "from ..service.settings import Settings\n", {LAYERS, SERVICE},
     "prefscribe.batch._sideways -> prefscribe.service.settings"),
    # the update engine importing the service it was moved out of
    ("updates/_back.py", "from ..service.runtime import Runtime\n", {LAYERS, SERVICE},
     "prefscribe.updates._back -> prefscribe.service.runtime"),
    # a new package nobody placed in the layers
    ("newthing/__init__.py", "from ..schema import Profile\n", {LAYERS}, "- prefscribe.newthing"),
])
def test_a_broken_layer_breaks_its_contract(tmp_path, path, source, broken, named):
    copy = tmp_path / "src" / "prefscribe"
    shutil.copytree(REPO / "src" / "prefscribe", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / path
    target.parent.mkdir(exist_ok=True)
    target.write_text(source)
    result = lint_imports(tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert {name for name, verdict in verdicts.items() if verdict == "BROKEN"} == broken, result.stdout
    assert named in result.stdout
