"""bench/bench_engines.py --controls end to end on the tiny random model: each "engine" writes and judges a few
P-Soups users in its own process, the table is built, and the qualifying rule applied (not model quality)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from prefscribe.evaluate import compare_runs

from ..conftest import DATA, REPO

needs_data = pytest.mark.skipif(not (DATA / "psoups").exists(), reason="needs ../shared/data (set PREFSCRIBE_DATA)")


@needs_data
def test_the_controls_check_builds_its_table_and_applies_the_rule(tiny_model_dir, tmp_path):
    # The same weights under another path: an engine that gives users exactly what the reference gives.
    twin = shutil.copytree(tiny_model_dir, tmp_path / "twin")
    engines = [f"hf:{tiny_model_dir}+torch-fp32", f"hf:{twin}+torch-fp32", f"hf:{tiny_model_dir}+torch"]
    out = tmp_path / "controls"
    env = {**os.environ, "PREFSCRIBE_DATA": str(DATA), "PREFSCRIBE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_engines.py"), "--engines", ",".join(engines),
                           "--controls", "3", "--max-new-tokens", "8", "--controls-dir", str(out)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in text.splitlines() if line.startswith("| ")}
    assert list(table)[0] == "measure (3 P-Soups users)" and table["measure (3 P-Soups users)"] == engines
    for name in ("accuracy none", "accuracy gold", "accuracy gold_mismatched", "accuracy full",
                 "accuracy mismatched", "own - another's", "gold - gold_mismatched"):
        assert len(table[name]) == 3 and table[name][1].endswith("(+0.0 [+0.0, +0.0])")  # the twin: no difference

    items = {}
    for engine in engines:
        folder = out / engine.replace("/", "_").replace(":", "_")
        items[engine] = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
        assert {(r["setting"]) for r in items[engine]} == {"none", "gold", "gold_mismatched", "full", "mismatched"}
        assert len(items[engine]) == 15 and items[engine][0]["model"] == engine  # 3 users x 5 settings
    assert table["decisions agree"][1] == "100% of 15" and table["qualifies"][1] == "yes"
    assert table["ruled out by this sample"][1] == "no"
    bf16 = compare_runs(items[engines[2]], items[engines[0]], ("none", "gold", "gold_mismatched", "full", "mismatched"))
    assert table["qualifies"][2] == ("yes" if bf16.qualifies else "no")
    assert table["decisions agree"][2] == f"{100 * bf16.agreement:.0f}% of 15"
    assert table["ruled out by this sample"][2] == ("yes" if bf16.ruled_out else "no")
