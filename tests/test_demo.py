import json

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app
from prefscribe.llm import hf, load_backend

runner = CliRunner()


@pytest.fixture(autouse=True)
def bf16_tiny_model(monkeypatch):
    """The tiny random model in bf16 on every CPU: whether a random model's reply parses as a profile depends on
    its dtype, and `hf:` models load in the CPU's dtype (float32 where bf16 is not native). These tests are about
    the demo's output, so they pin the dtype in which the tiny model happens to write profiles."""
    monkeypatch.setattr(hf, "cpu_dtype", lambda: "bfloat16")
    load_backend.cache_clear()  # a backend loaded by an earlier test in the CPU's dtype
    yield
    load_backend.cache_clear()


def test_demo_json_shows_p_true_without_with_own_and_with_another_users_profile(tiny_model_dir):
    result = runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}", "--json"])
    assert result.exit_code == 0, result.output
    users = json.loads(result.stdout)["users"]
    assert [u["user"] for u in users] == ["maya", "sam", "lena"]
    profiles = {u["user"]: u["profile"] for u in users}
    for row in users:
        assert {"user", "p_true_none", "p_true_own", "p_true_mismatched", "profile"} <= set(row)
        assert row["donor"] != row["user"]
        assert 0 < row["p_true_none"] < 1
        if row["profile"] is not None:
            assert 0 < row["p_true_own"] < 1
        if profiles[row["donor"]] is not None:
            assert 0 < row["p_true_mismatched"] < 1
    # A random tiny model still writes some profile, and different users get different probabilities with it.
    assert any(p for p in profiles.values())
    assert sorted(u["donor"] for u in users) == sorted(profiles)  # every profile is lent once


def test_demo_table_names_the_columns(tiny_model_dir):
    result = runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}"])
    assert result.exit_code == 0, result.output
    # The mismatched column names whose profile each user borrowed: maya -> sam -> lena -> maya.
    assert all(f"({donor}'s)" in result.output for donor in ("sam", "lena", "maya"))


def test_demo_with_candidates_keeps_validated_profiles(tiny_model_dir):
    plain = json.loads(runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}", "--json"]).stdout)["users"]
    assert all(row["validation"] is None for row in plain)
    result = runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}", "--json", "--candidates", "2"])
    assert result.exit_code == 0, result.output
    validated = json.loads(result.stdout)["users"]
    # Every example user has history pairs, so every profile that was written was kept for its score: the
    # judge's mean probability of the user's own choices.
    for row in validated:
        if row["profile"] is not None:
            assert 0 < row["validation"] < 1


def test_demo_names_an_unknown_writer_and_explains_a_measured_writer_without_calibration(tiny_model_dir):
    result = runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}", "--writer", "nope"])
    assert result.exit_code != 0 and "unknown writer 'nope'" in result.output and "measured" in result.output
    # Three example users are too few to compare with each other, and no table was calibrated for a tiny model:
    # the error says what to do instead of writing profiles that cannot be read.
    result = runner.invoke(app, ["demo", "--model", f"hf:{tiny_model_dir}", "--writer", "measured"])
    assert result.exit_code != 0 and "prefscribe calibrate" in result.output and "--writer free" in result.output
