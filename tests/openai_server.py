"""A small OpenAI-compatible chat server over a local transformers model, with logprobs and streaming: the
test double for a vLLM/SGLang endpoint. It runs a real HTTP server on loopback. It records each request body
(`app.state.counters["bodies"]`) and how many streams ended before their last chunk ("streams_cut")."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import torch
import uvicorn
from fastapi import FastAPI, Request


def build_app(backend, *, fail_first: int = 0, reasoning_parser: bool = False,
              hold_after: int | None = None, delay: float = 0.0, chunk_delay: float = 0.0) -> FastAPI:
    """`reasoning_parser` acts like vLLM's: the first half of each reply's tokens goes to `reasoning_content`.
    `hold_after`: answer that many requests, then hold every later one until `app.state.release` is set (or
    its client goes away): a test controls how far a job gets, whatever the machine's speed.
    `delay`: seconds before answering; `chunk_delay`: seconds between streamed tokens."""
    app = FastAPI()
    state = {"failures_left": fail_first, "requests": 0, "held": 0, "dropped": 0, "bodies": [], "streams_cut": 0}
    app.state.counters = state
    app.state.release = release = threading.Event()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state["requests"] += 1
        if hold_after is not None and state["requests"] > hold_after and not release.is_set():
            state["held"] += 1
            while not release.is_set():
                if await request.is_disconnected():
                    state["dropped"] += 1
                    from fastapi.responses import Response
                    return Response(status_code=499)
                await asyncio.sleep(0.05)
        state["bodies"].append(body)
        if delay:
            await asyncio.sleep(delay)
        if state["failures_left"] > 0:
            state["failures_left"] -= 1
            from fastapi.responses import JSONResponse
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        tok, model = backend.tokenizer, backend.model
        ids = tok(backend.render(body["messages"]), add_special_tokens=False, return_tensors="pt")["input_ids"]
        temperature = float(body.get("temperature") or 0.0)
        torch.manual_seed(int(body.get("seed") or 0))
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=int(body.get("max_tokens") or 16),
                                 do_sample=temperature > 0, temperature=temperature or None, top_k=None,
                                 top_p=None, output_logits=True, return_dict_in_generate=True,
                                 pad_token_id=tok.pad_token_id)
        new = out.sequences[0, ids.shape[1]:].tolist()
        finish = "length"
        if tok.eos_token_id in new:
            new, finish = new[: new.index(tok.eos_token_id)], "stop"
        content = []
        top_n = int(body.get("top_logprobs") or 0)
        for step, token in enumerate(new):
            logprobs = torch.log_softmax(out.logits[step][0].float(), -1)
            top = torch.topk(logprobs, top_n).indices.tolist() if top_n else []
            content.append({"token": tok.decode([token]), "logprob": float(logprobs[token]), "bytes": None,
                            "top_logprobs": [{"token": tok.decode([t]), "logprob": float(logprobs[t]),
                                              "bytes": None} for t in top]})
        if body.get("stream"):
            return _stream(body, [tok.decode([t]) for t in new], finish, chunk_delay, state)
        message = {"role": "assistant", "content": tok.decode(new)}
        if reasoning_parser:
            half = len(new) // 2
            message = {"role": "assistant", "reasoning_content": tok.decode(new[:half]),
                       "content": tok.decode(new[half:])}
        return {
            "id": f"chatcmpl-{state['requests']}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message,
                         "finish_reason": finish,
                         "logprobs": {"content": content} if body.get("logprobs") else None}],
            "usage": {"prompt_tokens": ids.shape[1], "completion_tokens": len(new),
                      "total_tokens": ids.shape[1] + len(new)},
        }

    return app


def _stream(body: dict, pieces: list[str], finish: str, chunk_delay: float, state: dict):
    from fastapi.responses import StreamingResponse

    base = {"id": f"chatcmpl-{state['requests']}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"]}

    async def events():
        done = False
        try:
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant'}}]})}\n\n"
            for piece in pieces:
                if chunk_delay:
                    await asyncio.sleep(chunk_delay)
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            chunk = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"
            done = True
        finally:
            if not done:
                state["streams_cut"] += 1

    return StreamingResponse(events(), media_type="text/event-stream")


class ServerThread:
    """uvicorn on a free loopback port, in a thread; `with ServerThread(app) as url:`."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
