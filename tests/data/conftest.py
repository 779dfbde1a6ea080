"""Fixtures for the loader tests: where the real benchmark files are, and the leakage check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prefscribe.schema import UserRecord

# tests/data/conftest.py -> parents[2] is the repo root; the shared data sits beside the repo.
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = Path(os.environ.get("PREFSCRIBE_DATA", DEFAULT_DATA))
    if not root.is_dir():
        pytest.skip(f"real benchmark data not found at {root}; set PREFSCRIBE_DATA to the shared/data folder")
    return root


@pytest.fixture(scope="session")
def real_file(data_dir: Path):
    """`real_file("mind/sample400by_ratio.csv")`: the path, or a skip naming what is missing."""
    def find(relative: str) -> Path:
        path = data_dir / relative
        if not path.exists():
            pytest.skip(f"{relative} is not in {data_dir}")
        return path
    return find


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _assert_no_target_in_history(records: list[UserRecord]) -> None:
    """No target item (chosen or rejected) may appear as any history item of the same user."""
    assert records
    for record in records:
        assert record.target is not None, record.user_id
        targets = {_key(record.target.chosen), _key(record.target.rejected)}
        for h in record.history:
            items = {_key(h.chosen)} | ({_key(h.rejected)} if h.rejected else set())
            assert not items & targets, f"user {record.user_id}: target item in history: {items & targets}"


@pytest.fixture(scope="session")
def assert_no_target_in_history():
    return _assert_no_target_in_history
