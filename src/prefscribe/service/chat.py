"""The OpenAI-compatible proxy's two parts below the routes: the upstream model a chat goes to, and the
memory of recent completions that /v1/feedback turns into interactions.

A server upstream (`openai:<model>@<url>`) gets the request as the client sent it (the profile added, the
model renamed) and streams back through this process, so a client that goes away closes the upstream
request too. A local upstream (`embedded`, `hf:`) generates on a worker thread, one call at a time (the model is
shared with the update worker), streams the tokens as they are decoded, and a client that goes away (or the
timeout) stops the generation (llm.Watch).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import PrefscribeError
from ..llm import Completion, Sampling, Watch, generate_watched, parse_spec
from ..updates import ModelRuntime
from .openai_schemas import UpstreamChunk

DEFAULT_MAX_TOKENS = 512
log = logging.getLogger("prefscribe.service")


class UpstreamError(PrefscribeError):
    """The upstream model failed: `status` 502 (an error or no answer) or 504 (too slow). The message is
    safe to show a client: it names no host."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def upstream_name(spec: str) -> str:
    """The model id clients send and /v1/models lists: a server's own model name (never its URL), or the
    spec of a local model."""
    parsed = parse_spec(spec)
    return parsed.name if parsed.kind == "openai" else spec


class ServerUpstream:
    """An OpenAI-compatible server, spoken to directly over HTTP (streaming included)."""

    def __init__(self, spec: str, timeout: float, api_key: str | None = None) -> None:
        parsed = parse_spec(spec)
        self.name, self.model, self.timeout = upstream_name(spec), parsed.name, timeout
        self._url = parsed.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers)

    def _failed(self, exc: Exception) -> UpstreamError:
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(504, "upstream_timeout", f"the model did not answer within {self.timeout:g} s: "
                                 "try again, or ask for fewer tokens")
        return UpstreamError(502, "upstream_unreachable", "the model cannot be reached right now: try again later")

    @staticmethod
    def _refused(status: int) -> UpstreamError:
        return UpstreamError(502, "upstream_error", f"the model answered with an error (HTTP {status}): try "
                             "again later")

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(self._url, json={**body, "model": self.model, "stream": False})
        except httpx.HTTPError as exc:
            raise self._failed(exc) from exc
        if response.status_code >= 400:
            raise self._refused(response.status_code)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(502, "upstream_error", "the model's answer is not JSON") from None

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The upstream's chunks; closing this generator closes the upstream request."""
        request = {**body, "model": self.model, "stream": True}
        try:
            async with self._http.stream("POST", self._url, json=request) as response:
                if response.status_code >= 400:
                    raise self._refused(response.status_code)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    UpstreamChunk.model_validate(chunk)  # a ValueError if it is not a chunk
                    yield chunk
        except httpx.HTTPError as exc:
            raise self._failed(exc) from exc
        except ValueError:
            raise UpstreamError(502, "upstream_error", "the model sent a malformed stream") from None

    async def aclose(self) -> None:
        await self._http.aclose()


class LocalUpstream:
    """A model in this process (embedded, hf). Its generation runs on a worker thread, one call at a time (the
    model is shared with the update worker), and says the reply's text as it is decoded; a reply given up on (a
    client gone, the timeout) cancels it within a decode step."""

    def __init__(self, spec: str, models: ModelRuntime, timeout: float) -> None:
        self.name, self.models, self.timeout = upstream_name(spec), models, timeout

    def _timed_out(self) -> UpstreamError:
        return UpstreamError(504, "upstream_timeout", f"the model did not answer within {self.timeout:g} s: "
                             "try again, or ask for fewer tokens")

    def _generate(self, messages: list[dict], sampling: Sampling, watch: Watch) -> Completion:
        with self.models.use() as backend:
            watch.stop_if_cancelled()  # given up on while it waited for the model
            return generate_watched(backend, [messages], sampling, watch)[0]

    async def _reply(self, body: dict[str, Any], *, stream: bool) -> AsyncIterator[str | Completion]:
        """The reply's text in pieces as it is decoded (only when `stream`), then its Completion. Leaving this
        generator early cancels the generation. Streaming, `timeout` bounds each wait for the next piece (as a
        server upstream's read timeout does); otherwise the whole reply."""
        sampling = Sampling(max_new_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens")
                                               or DEFAULT_MAX_TOKENS),
                            temperature=float(body.get("temperature", 0.7)), top_p=float(body.get("top_p", 0.95)),
                            seed=int(body.get("seed") or 0))
        messages = [{"role": m["role"], "content": text_of(m.get("content"))} for m in body["messages"]]
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()  # None: the generation ended (its future says how)

        def said(_: int, text: str) -> None:  # on the generating thread
            if not watch.cancel.is_set():
                loop.call_soon_threadsafe(pieces.put_nowait, text)

        def ended(future: asyncio.Future) -> None:
            if not future.cancelled():
                future.exception()  # seen here, so a generation given up on logs no "never retrieved"
            pieces.put_nowait(None)

        watch = Watch(on_text=said if stream else None)
        generation = loop.run_in_executor(None, self._generate, messages, sampling, watch)
        generation.add_done_callback(ended)
        deadline = loop.time() + self.timeout
        try:
            while True:
                if stream:
                    deadline = loop.time() + self.timeout
                piece = await asyncio.wait_for(pieces.get(), max(0.0, deadline - loop.time()))
                if piece is None:
                    break
                yield piece
            completion = generation.result()
        except TimeoutError:
            raise self._timed_out() from None
        except PrefscribeError as exc:
            raise UpstreamError(502, "upstream_unavailable", "the model cannot be loaded right now: try again "
                                "later") from exc
        except Exception as exc:  # the model's own failure: logged here, a 502 without detail for the client
            log.error("the local chat model failed", exc_info=exc)
            raise UpstreamError(502, "upstream_error", "the model call failed: try again later") from exc
        finally:
            if not generation.done():
                watch.cancel.set()
                log.info("chat generation cancelled after %d tokens", watch.tokens)
        if completion.finish_reason == "error":
            raise UpstreamError(502, "upstream_error", "the model call failed: try again later")
        yield completion

    @staticmethod
    def _usage(completion: Completion) -> dict[str, int]:
        return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens}

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        async with aclosing(self._reply(body, stream=False)) as reply:
            completion = [item async for item in reply][-1]
        assert isinstance(completion, Completion)
        return {"id": "local", "object": "chat.completion", "created": int(time.time()), "model": self.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                             "finish_reason": completion.finish_reason}],
                "usage": self._usage(completion)}

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Chunks as the tokens come; the first once the model has written something (so a failure before
        that is still a 502/504 status); closing this generator cancels the generation."""
        base = {"id": "local", "object": "chat.completion.chunk", "created": int(time.time()), "model": self.name}
        started = False
        async with aclosing(self._reply(body, stream=True)) as reply:
            async for item in reply:
                if not started:
                    started = True
                    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]}
                if isinstance(item, str):
                    yield {**base, "choices": [{"index": 0, "delta": {"content": item}, "finish_reason": None}]}
                else:
                    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": item.finish_reason}],
                           "usage": self._usage(item)}

    async def aclose(self) -> None:
        return None


Upstream = ServerUpstream | LocalUpstream


def text_of(content: Any) -> str:
    """A message's text: OpenAI content is a string or a list of parts ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


# Feedback stores the context and the reply as an interaction: a NUL (a chat may carry one) or a lone surrogate
# (a server upstream may send one) is text no database column holds, so neither is kept.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


@dataclass
class Remembered:
    user_id: str
    context: str | None  # the last user message the reply answered
    reply: str
    at: float


class CompletionMemory:
    """The latest `per_tenant` completions of each tenant, each for `seconds`: enough to take feedback on
    a reply shortly after it was given, bounded in memory whatever the traffic."""

    def __init__(self, per_tenant: int, seconds: float) -> None:
        self.per_tenant, self.seconds = per_tenant, seconds
        self._by_tenant: dict[int, OrderedDict[str, Remembered]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return f"chatcmpl-{uuid.uuid4().hex}"

    def remember(self, tenant_id: int, completion_id: str, user_id: str, context: str | None, reply: str) -> None:
        context = _UNSTORABLE.sub("", context) if context is not None else None
        with self._lock:
            kept = self._by_tenant.setdefault(tenant_id, OrderedDict())
            kept[completion_id] = Remembered(user_id, context, _UNSTORABLE.sub("", reply), time.monotonic())
            while len(kept) > self.per_tenant:
                kept.popitem(last=False)

    def recall(self, tenant_id: int, completion_id: str) -> Remembered | None:
        with self._lock:
            kept = self._by_tenant.get(tenant_id)
            found = kept.get(completion_id) if kept else None
            if found is None or time.monotonic() - found.at > self.seconds:
                return None
            return found


@dataclass
class ChatProxy:
    upstream: Upstream
    memory: CompletionMemory


def build_chat(spec: str, models: ModelRuntime, *, timeout: float, per_tenant: int, seconds: float,
               api_key: str | None = None) -> ChatProxy:
    """The proxy for the chat model `spec`; a local model that is also the update model is shared (`models`),
    so it is loaded once."""
    if parse_spec(spec).kind == "openai":
        upstream: Upstream = ServerUpstream(spec, timeout, api_key)
    else:
        upstream = LocalUpstream(spec, models if spec == models.spec else ModelRuntime(spec), timeout)
    return ChatProxy(upstream, CompletionMemory(per_tenant, seconds))
