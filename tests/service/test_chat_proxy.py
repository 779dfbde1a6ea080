"""The OpenAI-compatible personalization proxy, driven by the official `openai` client against a live server:
the profile goes in as a system message, the answer names its version, feedback becomes history, and
upstream failures come back as OpenAI-shaped 502/504 errors."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from prefscribe.llm import load_backend
from prefscribe.schema import Interaction
from prefscribe.service import create_app
from prefscribe.store import Store

from ..openai_server import ServerThread, build_app
from ..tiny_model import rewired_to_write
from .conftest import free_port, items, make_settings, wait_for
from .scripted import ScriptedBackend

VERSION = "x-prefscribe-profile-version"
PREFERENCE = "## User's Preference\n"


@pytest.fixture
def proxy(db_url, live_server, tiny_backend):
    """start(chat_model=..., **settings) -> (service URL, API key, store); `upstream(**options)` starts a fake
    OpenAI server over the tiny model and returns (spec, its counters)."""
    stores, upstreams = [], []

    def upstream(**options):
        app = build_app(tiny_backend, **options)
        server = ServerThread(app)
        url = server.__enter__()
        upstreams.append(server)
        return f"openai:tiny@{url}", app.state.counters

    def start(**overrides):
        store = Store(db_url)
        stores.append(store)
        settings = make_settings(db_url, **overrides)
        url = live_server(create_app(settings, store=store, backend=ScriptedBackend()))
        key, _ = store.create_key("tenant-a")
        return url, key, store

    yield start, upstream
    for server in upstreams:
        server.__exit__(None, None, None)
    for store in stores:
        store.close()


def _openai(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def _with_profile(store: Store, user: str, text: str) -> int:
    tenant = store.tenant("tenant-a")
    store.ingest(tenant.id, user, [Interaction(chosen="a short answer")])
    return store.edit(tenant.id, user, text)[0].version


def test_the_profile_goes_upstream_as_a_system_message(proxy):
    start, upstream = proxy
    spec, seen = upstream()
    url, key, store = start(chat_model=spec)
    version = _with_profile(store, "u1", "Prefers terse answers.")
    client = _openai(url, key)
    assert [m.id for m in client.models.list()] == ["tiny"]

    raw = client.chat.completions.with_raw_response.create(
        model="tiny", max_tokens=8, extra_headers={"X-Prefscribe-User": "u1"},
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}])
    assert raw.headers[VERSION] == str(version)
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-") and completion.model == "tiny"
    assert completion.model_extra["prefscribe"] == {"user": "u1", "profile_version": version}
    sent = seen["bodies"][-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user"]
    assert sent["messages"][0]["content"] == "Be brief."  # the caller's own system message stays first
    assert sent["messages"][1]["content"].endswith(PREFERENCE + "Prefers terse answers.")
    assert sent["model"] == "tiny" and sent["max_tokens"] == 8 and "user" not in sent

    # Streaming, the user named by the request's `user` field: every chunk is this completion's.
    chunks = list(client.chat.completions.create(model="tiny", max_tokens=8, user="u1", stream=True,
                                                 messages=[{"role": "user", "content": "Hi again"}]))
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.model_extra["prefscribe"]["profile_version"] == version for c in chunks)
    assert seen["bodies"][-1]["stream"] is True and PREFERENCE in seen["bodies"][-1]["messages"][0]["content"]

    # The header wins over the `user` field: u2 has no profile, so nothing is added.
    raw = client.chat.completions.with_raw_response.create(
        model="tiny", max_tokens=4, user="u1", extra_headers={"X-Prefscribe-User": "u2"},
        messages=[{"role": "user", "content": "Hello"}])
    assert raw.headers[VERSION] == "none" and raw.parse().model_extra["prefscribe"]["profile_version"] is None
    assert seen["bodies"][-1]["messages"] == [{"role": "user", "content": "Hello"}]


def test_requests_without_a_user_a_wrong_model_or_key_are_refused_in_openai_shape(proxy):
    start, upstream = proxy
    spec, seen = upstream()
    url, key, _ = start(chat_model=spec)
    client = _openai(url, key)
    with pytest.raises(openai.BadRequestError) as no_user:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}])
    assert no_user.value.code == "user_required" and "X-Prefscribe-User" in no_user.value.message
    with pytest.raises(openai.NotFoundError) as wrong_model:
        client.chat.completions.create(model="gpt-4o", user="u1", messages=[{"role": "user", "content": "Hi"}])
    assert wrong_model.value.code == "model_not_found" and "'tiny'" in wrong_model.value.message
    with pytest.raises(openai.AuthenticationError):
        _openai(url, "psk_wrong").models.list()
    assert seen["requests"] == 0

    url, key, _ = start(chat_model=spec, chat_anonymous=True)  # this deployment passes such requests through
    raw = _openai(url, key).chat.completions.with_raw_response.create(
        model="tiny", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    assert raw.headers[VERSION] == "none" and seen["bodies"][-1]["messages"] == [{"role": "user", "content": "Hi"}]


def test_upstream_failures_are_502_or_504_and_name_no_host(proxy):
    start, upstream = proxy
    dead = f"openai:tiny@http://127.0.0.1:{free_port()}/v1"
    slow, _ = upstream(delay=3.0)
    failing, _ = upstream(fail_first=100)
    cases = [(dead, 502, "upstream_unreachable"), (slow, 504, "upstream_timeout"), (failing, 502, "upstream_error")]
    for spec, status, code in cases:
        url, key, _ = start(chat_model=spec, chat_timeout_seconds=1.0)
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as failed:
                _openai(url, key).chat.completions.create(model="tiny", user="u1", stream=stream,
                                                          messages=[{"role": "user", "content": "Hi"}])
            assert failed.value.status_code == status and failed.value.code == code, (spec, stream)
            assert "127.0.0.1" not in failed.value.message and "Traceback" not in failed.value.response.text


def test_an_upstream_answer_that_is_not_a_chat_completion_is_a_502(proxy):
    start, _ = proxy
    odd = FastAPI()  # an "OpenAI-compatible" server whose answers are JSON, but not completions or chunks

    @odd.post("/v1/chat/completions")
    async def answer(request: Request):
        if (await request.json()).get("stream"):
            return StreamingResponse(iter(['data: ["not a chunk"]\n\n']), media_type="text/event-stream")
        return JSONResponse({"choices": "not a list"})

    with ServerThread(odd) as base:
        url, key, _ = start(chat_model=f"openai:odd@{base}")
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as failed:
                _openai(url, key).chat.completions.create(model="odd", user="u1", stream=stream,
                                                          messages=[{"role": "user", "content": "Hi"}])
            assert failed.value.status_code == 502 and failed.value.code == "upstream_error", stream


def test_fields_out_of_their_range_are_refused_before_the_upstream(proxy):
    start, upstream = proxy
    spec, seen = upstream()
    url, key, _ = start(chat_model=spec)
    client = _openai(url, key)
    for bad in ({"messages": [{"role": "wizard", "content": "Hi"}]}, {"max_tokens": 0}, {"temperature": 3},
                {"user": "a\x00b"}):
        ask = {"model": "tiny", "user": "u1", "messages": [{"role": "user", "content": "Hi"}], **bad}
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.chat.completions.create(**ask)
        assert refused.value.code == "invalid_request", bad
    assert seen["requests"] == 0


def test_a_client_that_leaves_mid_stream_stops_the_upstream_call(proxy):
    start, upstream = proxy
    spec, seen = upstream(chunk_delay=0.05)
    url, key, _ = start(chat_model=spec)
    body = {"model": "tiny", "user": "u1", "stream": True, "max_tokens": 400,
            "messages": [{"role": "user", "content": "Tell me a long story"}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as response:
        lines = response.iter_lines()
        received = [line for line, _ in zip(lines, range(6)) if line.startswith("data:")]
    assert len(received) >= 3
    wait_for(lambda: seen["streams_cut"] == 1, 10, "the upstream stream was not closed")


def test_a_local_model_upstream_streams_the_same_reply(proxy, tiny_model_dir):
    start, _ = proxy
    spec = f"hf:{tiny_model_dir}"
    url, key, store = start(chat_model=spec)
    _with_profile(store, "u1", "Prefers terse answers.")
    client = _openai(url, key)
    assert [m.id for m in client.models.list()] == [spec]
    # Greedy, and long enough for the random model to end its reply itself.
    ask = {"model": spec, "user": "u1", "max_tokens": 60, "temperature": 0.0,
           "messages": [{"role": "user", "content": "Hi"}]}
    whole = client.chat.completions.create(**ask)
    chunks = list(client.chat.completions.create(**ask, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert whole.choices[0].message.content == "".join(pieces) and len(pieces) > 1
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert whole.usage.completion_tokens > 0 and whole.model_extra["prefscribe"]["profile_version"] == 1


class Steps:
    """The decode steps of a local torch model, counted by a forward hook (one forward pass a step). At step
    `hold_at` the generation waits for `release` (20 s at most), so a test acts while it is known to be running;
    `pace` seconds a step make the tiny model as slow as a real one on a CPU."""

    def __init__(self, model, hold_at: int = 0, pace: float = 0.0) -> None:
        self.count, self.hold_at, self.pace = 0, hold_at, pace
        self.release = threading.Event()
        self._hook = model.register_forward_hook(self._step)

    def _step(self, *_) -> None:
        self.count += 1
        if self.count == self.hold_at:
            self.release.wait(20)
        time.sleep(self.pace)

    def close(self) -> None:
        self.release.set()
        self._hook.remove()


@pytest.fixture(scope="module")
def writes_user(tiny_model_dir, tmp_path_factory):
    """The tiny model rewired to write " user" for ever: every reply runs to max_tokens."""
    return rewired_to_write(tiny_model_dir, tmp_path_factory.mktemp("rewired") / "user", "Ġuser")


@pytest.fixture
def local_chat(db_url, live_server, writes_user):
    """(spec, start(**settings) -> (URL, key, the Steps of the chat model, wait(): until no generation holds the
    model)) for a live server whose chat model is `writes_user`."""
    spec = f"hf:{writes_user}"
    opened = []

    def start(**settings):
        store = Store(db_url)
        app = create_app(make_settings(db_url, chat_model=spec, **settings), store=store, backend=ScriptedBackend())
        url = live_server(app)
        key, _ = store.create_key("tenant-a")
        steps = Steps(load_backend(spec).model)  # the backend the server loads: one per spec in a process
        opened.append((store, steps))

        def wait() -> None:  # a generation holds the chat model's runtime (one call at a time) until it ends
            with app.state.runtime.chat.upstream.models.use():
                pass
        return url, key, steps, wait

    yield spec, start
    for store, steps in opened:
        steps.close()
        store.close()


def _ask_local(spec: str, max_tokens: int, stream: bool) -> dict:
    return {"model": spec, "user": "u1", "max_tokens": max_tokens, "temperature": 0.0, "stream": stream,
            "messages": [{"role": "user", "content": "Tell me a long story"}]}


def test_a_local_model_streams_its_tokens_as_they_are_decoded(local_chat):
    spec, begin = local_chat
    url, key, steps, _ = begin()
    steps.hold_at = 10  # the generation waits at its 10th step until the client has two pieces
    pieces, steps_then = [], None
    for chunk in _openai(url, key).chat.completions.create(**_ask_local(spec, 40, stream=True)):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            if len(pieces) == 2:
                steps_then = steps.count
                steps.release.set()
    assert steps_then is not None and steps_then <= 10 < steps.count == 40  # two pieces before the 10th step
    assert "".join(pieces) == " user" * 40 and len(pieces) > 2


def test_a_client_that_leaves_a_local_stream_stops_the_generation(local_chat):
    spec, begin = local_chat
    url, key, steps, wait = begin()
    steps.pace = 0.005
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=_ask_local(spec, 2000, stream=True), timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as response:
        for line in response.iter_lines():
            chunk = json.loads(line[5:]) if line.startswith("data:") else {}
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                break  # one piece of text, then the client goes away
    wait()
    assert 0 < steps.count < 100, steps.count  # of 2000
    # What was cut off is no reply: nothing kept to take feedback on.
    assert _feedback(url, key, completion_id=chunk["id"], rating="good").status_code == 404


def test_a_local_generation_past_the_timeout_is_a_504_and_stops(local_chat):
    spec, begin = local_chat
    url, key, steps, wait = begin(chat_timeout_seconds=1.0)
    steps.hold_at = 3  # the generation waits at its 3rd step until the client has its answer
    with pytest.raises(openai.APIStatusError) as failed:
        _openai(url, key).chat.completions.create(**_ask_local(spec, 2000, stream=False))
    assert failed.value.status_code == 504 and failed.value.code == "upstream_timeout"
    assert "Traceback" not in failed.value.response.text
    steps.release.set()
    wait()
    assert steps.count <= 4, steps.count  # the step it waited in, and no more


def _feedback(url: str, key: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_feedback_becomes_history_and_the_next_chat_carries_the_update(proxy):
    start, upstream = proxy
    spec, seen = upstream()
    url, key, store = start(chat_model=spec, worker=True, update_every=1)
    tenant = store.tenant("tenant-a")
    client = _openai(url, key)
    ask = dict(model="tiny", max_tokens=6, extra_headers={"X-Prefscribe-User": "u9"})

    first = client.chat.completions.with_raw_response.create(
        **ask, messages=[{"role": "user", "content": "How do I undo a commit?"}])
    assert first.headers[VERSION] == "none"
    reply = first.parse()
    kept = "Run git reset --soft HEAD~1."
    answer = _feedback(url, key, completion_id=reply.id, preferred=kept)
    assert answer.status_code == 201 and answer.json()["user_id"] == "u9" and answer.json()["update_due"]
    again = _feedback(url, key, completion_id=reply.id, preferred=kept)
    assert again.status_code == 200 and again.json()["duplicate"] is True

    [stored] = store.interactions(tenant.id, "u9")
    assert stored.interaction.context == "How do I undo a commit?" and stored.interaction.chosen == kept
    assert stored.interaction.rejected == reply.choices[0].message.content
    assert stored.interaction.meta == {"source": "chat-feedback", "completion_id": reply.id}

    wait_for(lambda: store.head(tenant.id, "u9")[1] is not None, 30, "the worker did not update the profile")
    profile = store.head(tenant.id, "u9")[1]
    assert kept[:40] in profile.profile

    chunks = list(client.chat.completions.create(**ask, stream=True,
                                                 messages=[{"role": "user", "content": "And undo a push?"}]))
    assert chunks[0].model_extra["prefscribe"]["profile_version"] == profile.version
    assert seen["bodies"][-1]["messages"][0]["content"].endswith(PREFERENCE + profile.profile)

    # A good rating is a positive-only interaction; a bad one alone says too little; an unknown id is a 404.
    good = _feedback(url, key, completion_id=chunks[0].id, rating="good")
    assert good.status_code == 201
    newest = store.interactions(tenant.id, "u9", limit=1)[0].interaction
    assert newest.rejected is None and newest.context == "And undo a push?"
    assert newest.chosen == "".join(c.choices[0].delta.content or "" for c in chunks)
    bad = _feedback(url, key, completion_id=reply.id, rating="bad")
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "preferred"
    unknown = _feedback(url, key, completion_id="chatcmpl-nope", rating="good")
    assert unknown.status_code == 404 and "keeps the latest 1000 completions" in unknown.json()["error"]["message"]


@pytest.mark.embedded
def test_a_terse_profile_shortens_the_embedded_models_replies(db_url, live_server):
    """The acceptance check on the real embedded model: a profile that prefers terse answers visibly changes
    the length of its replies against one that prefers thorough ones."""
    store = Store(db_url)
    # A CPU writes a few tokens a second: give the upstream and the client minutes, not the defaults.
    url = live_server(create_app(make_settings(db_url, model="embedded", chat_timeout_seconds=900), store=store))
    key, _ = store.create_key("tenant-a")
    tenant = store.tenant("tenant-a")
    for user, text in (("terse", "Wants the shortest possible answers: one sentence, no lists, no preamble."),
                       ("thorough", "Wants thorough, detailed answers with step-by-step explanations and examples.")):
        store.ingest(tenant.id, user, [Interaction(**i) for i in items(1)])
        store.edit(tenant.id, user, text)
    client = _openai(url, key).with_options(timeout=900)
    lengths = {}
    for user in ("terse", "thorough"):
        reply = client.chat.completions.create(model="embedded", user=user, max_tokens=160, temperature=0.0,
                                               messages=[{"role": "user", "content": "How do I undo my last git "
                                                          "commit?"}])
        lengths[user] = len(reply.choices[0].message.content.split())
    store.close()
    assert lengths["terse"] * 2 <= lengths["thorough"], json.dumps(lengths)


@pytest.mark.parametrize("field", ["seed", "temperature", "top_p", "max_tokens", "max_completion_tokens"])
def test_a_boolean_is_not_taken_for_a_number(field):
    # Found by the schema fuzz (FUZZ_SEED=3370237325): `"seed": true` was read as 1 and the request accepted.
    from pydantic import ValidationError

    from prefscribe.service.openai_schemas import ChatIn

    with pytest.raises(ValidationError, match="not a boolean"):
        ChatIn(model="m", messages=[{"role": "user", "content": "hi"}], **{field: True})
    assert getattr(ChatIn(model="m", messages=[{"role": "user", "content": "hi"}], **{field: 1}), field) == 1
