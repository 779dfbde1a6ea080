"""The model stage for servers through `ray.data.llm`: an HTTP processor (`build_processor` with
`HttpRequestProcessorConfig`: a request-rate cap, retries with backoff on 408/429/502/503/504 and
connection errors) posts each user's prompt to any OpenAI-compatible endpoint.

The library still decides everything around the request. Each streaming step is three stages:
  plan:   `Inferrer.plan` renders the prompt (the one template set) and names its cache key; a cached
          reply needs no request; otherwise `OpenAIBackend.chat_request` writes the body `generate` sends.
  post:   the ray.data.llm processor.
  finish: `Inferrer.run` over a backend that answers with the replies just fetched, so the reply is
          cached under the same key and parsed by the same parser as in `prefscribe infer`.
A user with k steps goes through k rounds; a failed step ends that user, as in `Inferrer.stream_many`.
"""

from __future__ import annotations

import json
from typing import Any

from ..data.transforms import split_segments
from ..errors import PrefscribeError
from ..infer import InferJob, Inferrer
from ..llm.base import Completion, Conversation, Sampling
from ..schema import InferenceFailure, Profile
from ._users import UserJob
from ._write import ModelSettings, result_row


def available() -> bool:
    """Whether ray.data.llm imports here (its HTTP stage needs aiohttp, which the batch extra installs)."""
    try:
        import ray.data.llm  # noqa: F401
    except ImportError:
        return False
    return True


def _messages_key(messages: Conversation) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


class _Answered:
    """A Backend that answers with completions fetched already (by the HTTP stage), else fails."""

    def __init__(self, backend, answers: dict[str, Completion]) -> None:
        self.info, self._backend, self._answers = backend.info, backend, answers

    def count_tokens(self, text: str) -> int:
        return self._backend.count_tokens(text)

    def generate(self, prompts, sampling: Sampling, progress=None) -> list[Completion]:
        return [self._answers.get(_messages_key(p)) or Completion("", finish_reason="error",
                                                                 error="no reply from the HTTP stage")
                for p in prompts]

    def option_logprobs(self, prompts, prefill, options):
        raise NotImplementedError

    def continuation_logprobs(self, prompts, continuations):
        raise NotImplementedError


def _dump(result: Profile | InferenceFailure) -> dict:
    return {"failed": isinstance(result, InferenceFailure), **result.model_dump(mode="json")}


def _load(data: dict) -> Profile | InferenceFailure:
    data = dict(data)
    return InferenceFailure.model_validate(data) if data.pop("failed") else Profile.model_validate(data)


def _state(batch):
    import pyarrow as pa

    rows = batch.to_pylist()
    for row in rows:
        row.update(results="[]", request="", response="")
    return pa.Table.from_pylist(rows)


def _chunk(job: UserJob, step: int):
    return split_segments(job.history, job.steps)[step]


def _current(job: UserJob, results: list[dict]) -> Profile | None:
    return _load(results[-1]) if results else job.past_profile()  # type: ignore[return-value]


def _active(row: dict, step: int) -> bool:
    results = json.loads(row["results"])
    return step < int(row["steps"]) and not (results and results[-1]["failed"])


def _plan_step(batch, settings: ModelSettings, step: int):
    """The request of each user still streaming, or none when the reply is cached."""
    import pyarrow as pa

    from ..llm import load_backend

    backend = load_backend(settings.model)
    inferrer = settings.inferrer_for(backend)
    rows = batch.to_pylist()
    for row in rows:
        row["request"], row["response"] = "", ""
        if not _active(row, step):
            continue
        job = UserJob.from_row(row)
        try:
            plan = inferrer.plan(InferJob(_chunk(job, step), _current(job, json.loads(row["results"]))))
        except PrefscribeError:  # no request: the finish stage meets the same error and records it
            plan = None
        if plan is not None and (inferrer.cache is None or inferrer.cache.get(plan.key) is None):
            row["request"] = json.dumps(backend.chat_request(plan.messages, inferrer.sampling), ensure_ascii=False)
    return pa.Table.from_pylist(rows)


def _finish_step(batch, settings: ModelSettings, step: int):
    import pyarrow as pa

    from ..llm import load_backend
    from ..llm.openai import completion_from_response

    rows = batch.to_pylist()
    answers = {}
    for row in rows:
        if row["request"] and row["response"]:
            request = json.loads(row["request"])
            answers[_messages_key(request["messages"])] = completion_from_response(json.loads(row["response"]))
    inferrer: Inferrer = settings.inferrer_for(_Answered(load_backend(settings.model), answers))
    for row in rows:
        if not _active(row, step):
            continue
        job = UserJob.from_row(row)
        results = json.loads(row["results"])
        try:
            [result] = inferrer.run([InferJob(_chunk(job, step), _current(job, results))])
        except PrefscribeError as exc:  # a prompt that cannot be built: this user's failure, not the job's
            result = InferenceFailure(error=f"{type(exc).__name__}: {exc}", model=inferrer.backend.info.spec,
                                      prompt_version=inferrer.prompts.version)
        results.append(_dump(result))
        row["results"] = json.dumps(results, ensure_ascii=False)
    return pa.Table.from_pylist(rows)


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "payload": json.loads(row["request"])}


def _reply(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("payload", "http_response")}
    out["response"] = json.dumps(row["http_response"], ensure_ascii=False, default=str)
    return out


def _write_rows(batch, out: str, run: int):
    from ._job import _tally
    from ._output import write_part

    rows, jobs = [], []
    for row in batch.to_pylist():
        job = UserJob.from_row(row)
        jobs.append(job)
        rows.append(result_row(job, [_load(r) for r in json.loads(row["results"])]))
    write_part(out, rows, run)
    return _tally(rows, jobs)


def run_http(todo, settings: ModelSettings, config, run: int):
    """Every planned user through the HTTP processor, step by step; returns the tally dataset."""
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    from ..llm import load_backend
    from ._job import col

    backend = load_backend(settings.model)
    if not hasattr(backend, "chat_request"):
        raise ValueError(f"the http engine takes openai: models, not {settings.model!r}: use --engine actors")
    processor = build_processor(
        HttpRequestProcessorConfig(url=f"{backend.base_url.rstrip('/')}/chat/completions",
                                   headers={"Authorization": f"Bearer {backend.api_key}"}, qps=config.qps,
                                   max_retries=config.max_retries, batch_size=config.batch_size,
                                   concurrency=config.workers),
        preprocess=_payload, postprocess=_reply)
    steps = int(todo.max("steps") or 0)
    state = todo.map_batches(_state, batch_format="pyarrow").materialize()
    kwargs = {"settings": settings}
    for step in range(steps):
        planned = state.map_batches(_plan_step, batch_format="pyarrow", fn_kwargs={**kwargs, "step": step})
        planned = planned.materialize()
        asked = processor(planned.filter(expr=col("request") != ""))
        rest = planned.filter(expr=col("request") == "")
        state = (asked.union(rest).map_batches(_finish_step, batch_format="pyarrow",
                                               fn_kwargs={**kwargs, "step": step}).materialize())
    return state.map_batches(_write_rows, batch_format="pyarrow",
                             fn_kwargs={"out": config.out, "run": run}).materialize()
