"""A small OpenAI-compatible chat server over a local transformers model, with logprobs: the test double
for a vLLM/SGLang endpoint. It runs a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import torch
import uvicorn
from fastapi import FastAPI, Request


def build_app(backend, *, fail_first: int = 0, reasoning_parser: bool = False,
              hold_after: int | None = None) -> FastAPI:
    """`reasoning_parser` acts like vLLM's: the first half of each reply's tokens goes to `reasoning_content`.
    `hold_after`: answer that many requests, then hold every later one until `app.state.release` is set (or
    its client goes away): a test controls how far a job gets, whatever the machine's speed."""
    app = FastAPI()
    state = {"failures_left": fail_first, "requests": 0, "held": 0, "dropped": 0}
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
