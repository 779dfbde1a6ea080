"""The plumbing of bench/bench_quality.py on the tiny random model: every benchmark, every control, resumable."""

import importlib.util
import json

import pytest

from ..conftest import DATA, REPO

needs_data = pytest.mark.skipif(not (DATA / "psoups").exists(), reason="needs ../shared/data (set PREFSCRIBE_DATA)")


def bench_quality():
    spec = importlib.util.spec_from_file_location("bench_quality", REPO / "bench" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_data
def test_bench_quality_runs_every_control_and_resumes(tiny_model_dir, tmp_path, capsys):
    bench = bench_quality()
    tiny = f"hf:{tiny_model_dir}"
    argv = ["--model", tiny, "--judge", tiny, "--out", str(tmp_path / "q"), "--data", str(DATA),
            "--psoups-users", "4", "--dsp-users", "4", "--rec-users", "3", "--max-new-tokens", "8"]
    text = bench.main(argv)
    folders = {b: tmp_path / "q" / b for b in ("psoups", "dsp", "movielens", "mind", "amazon")}
    settings = {}
    for name, folder in folders.items():
        rows = json.loads((folder / "summary.json").read_text())["results"]
        settings[name] = {r["setting"]: r["n"] for r in rows}
    for name in ("psoups", "dsp"):
        assert settings[name] == dict.fromkeys(("none", "gold", "gold_mismatched", "generic", "full", "mismatched",
                                                "streaming", "streaming_mismatched"), 4)
    for name in ("movielens", "mind", "amazon"):  # no gold text: the gold settings are left out
        assert settings[name] == dict.fromkeys(("none", "generic", "full", "mismatched", "streaming",
                                                "streaming_mismatched"), 3)
    assert "| psoups | " in text and "full - mismatched" in text and "gold - gold_mismatched" in text
    assert "| mind | " in text and "streaming - streaming_mismatched" in text
    assert "gain recovered on psoups" in text and "Acceptance (issue 10)" in text and "Wall time" in text
    assert (tmp_path / "q" / "quality.md").read_text() == text
    lines = {name: (folder / "items.jsonl").read_text() for name, folder in folders.items()}
    bench.main(argv)  # a rerun resumes: nothing judged twice
    assert {name: (folder / "items.jsonl").read_text() for name, folder in folders.items()} == lines
