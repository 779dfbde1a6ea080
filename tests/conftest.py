from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from prefscribe.llm.base import BackendInfo, Completion, OptionScores, Sampling

from .tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PREFSCRIBE_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _temp_home(tmp_path, monkeypatch):
    """Every test gets its own result cache and prompt settings; model weights stay shared."""
    monkeypatch.setenv("PREFSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFSCRIBE_PROMPTS", raising=False)


PG_ENV = "PREFSCRIBE_TEST_POSTGRES_URL"
DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _postgres_url() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests skipped: {PG_ENV} is not set (e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test; .ci/run sets it)")
    from prefscribe.store import normalize_url

    return normalize_url(base)


@pytest.fixture(params=DBS)
def db_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'profiles.db'}"
        return
    from sqlalchemy import create_engine, text

    base = _postgres_url()
    schema = f"prefscribe_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV}={base} is set but PostgreSQL cannot be used: {exc}")
    yield base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def another_db(db_url):
    """A second new, empty database of the same kind: a SQLite file, or a PostgreSQL schema dropped after."""
    if db_url.startswith("sqlite"):
        yield db_url.replace("profiles.db", "other.db")
        return
    from sqlalchemy import create_engine, text

    base, _, options = db_url.partition("options=-csearch_path%3D")
    schema = options + "_other"
    engine = create_engine(base.rstrip("?&"))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir):
    from prefscribe.llm.hf import HFBackend

    # fp32 so that the shared-prefix and full passes agree to rounding.
    return HFBackend.from_path(tiny_model_dir, spec=f"hf:{tiny_model_dir}", dtype="float32")


@dataclass
class FakeBackend:
    """A scripted model: replies are taken in order from `replies` (or made by `reply_fn`); answer-letter
    logprobs come from `option_fn(prompt) -> [logp_A, logp_B]`. Records every call."""

    replies: list[str] = field(default_factory=list)
    reply_fn: Callable[[list[dict]], str] | None = None
    option_fn: Callable[[list[dict]], list[float | None]] | None = None
    thinks: bool = False
    context_window: int = 8192
    finish_reason: str = "stop"
    calls: list = field(default_factory=list)

    def __post_init__(self):
        self.info = BackendInfo(spec="fake:test", thinks=self.thinks, context_window=self.context_window)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompts: Sequence[list[dict]], sampling: Sampling, progress=None) -> list[Completion]:
        out = []
        for prompt in prompts:
            self.calls.append(("generate", prompt))
            text = self.reply_fn(prompt) if self.reply_fn else self.replies.pop(0)
            out.append(Completion(text=text, prompt_tokens=sum(self.count_tokens(m["content"]) for m in prompt),
                                  completion_tokens=self.count_tokens(text), finish_reason=self.finish_reason))
        if progress:
            progress(len(prompts))
        return out

    def option_logprobs(self, prompts, prefill, options) -> list[OptionScores]:
        self.calls.append(("options", prompts))
        return [OptionScores(logprobs=self.option_fn(p), prompt_tokens=10) for p in prompts]

    def continuation_logprobs(self, prompts, continuations) -> list[float]:
        raise NotImplementedError


@pytest.fixture
def fake_backend():
    return FakeBackend


def wait_for(condition: Callable[[], bool], timeout: float, message: str, interval: float = 0.05) -> None:
    """Poll until `condition()` holds; fail with `message` after `timeout` seconds (a hang guard, not a timing
    assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s: {message}")
