"""The real update path with a real (tiny) transformers model: load by spec, render, generate, parse,
store; and choose through the model's answer-letter log-probabilities."""

from __future__ import annotations

import pytest

from ..tiny_model import rewired_to_write
from .conftest import items

pytestmark = pytest.mark.timeout(480)  # a hang guard only


def _model_that_writes_dots(tiny_model_dir, folder):
    """The tiny random model rewired so that its next token is always '.': a random model rarely ends a
    sentence, and a reply without one is (rightly) a failure, so this makes the success path certain."""
    return rewired_to_write(tiny_model_dir, folder, ".")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_update_and_choose_with_a_tiny_transformers_model(make_service, tiny_model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from prefscribe.llm.hf import torch_engine
    from prefscribe.service import create_app

    base = make_service()
    spec = f"hf:{_model_that_writes_dots(tiny_model_dir, tmp_path / 'dots')}"
    settings = base.settings.model_copy(update={"model": spec, "style": "direct", "max_new_tokens": 8})
    app = create_app(settings, store=base.store)  # the backend comes from the spec, as in `prefscribe serve`
    h = base.auth()
    with TestClient(app) as client:
        assert client.post("/v1/users/u1/interactions", json=items(3), headers=h).status_code == 201
        assert app.state.runtime.worker.step() == 1
        r = client.get("/v1/users/u1/profile", headers=h)
        assert r.status_code == 200, client.get("/v1/users/u1", headers=h).json()
        p = r.json()
        assert p["profile"] and set(p["profile"]) == {"."}
        # The profile names the model with its engine (the dtype it ran in), as every cache key does.
        engine = torch_engine()
        assert (p["model"], p["covers"], p["author"], p["version"], p["last_seq"]) == (f"{spec}+{engine}", 3, "model", 1, 3)
        assert p["usage"]["prompt_tokens"] > 0 and p["usage"]["completion_tokens"] == 8
        assert p["update"]["pending"] == 0 and p["update"]["last_error"] is None

        # a second update streams from the first version
        client.post("/v1/users/u1/interactions", json=items(3, start=3), headers=h)
        assert app.state.runtime.worker.step() == 1
        p = client.get("/v1/users/u1/profile", headers=h).json()
        assert (p["version"], p["parent"], p["first_seq"], p["covers"]) == (2, 1, 4, 6)

        r = client.post("/v1/users/u1/choose", json={"a": "Because.", "b": "No.", "context": "Why?"}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choice"] in ("a", "b") and body["method"] == "logprobs" and len(body["orders"]) == 2
        assert body["p_a"] + body["p_b"] == pytest.approx(1.0) and body["version"] == 2
