"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs): concurrent requests,
timeouts, retries, and answer log-probabilities read from the server's top logprobs."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence

from ..errors import BackendError, ModelUnavailableError
from .base import BackendInfo, Completion, Conversation, OptionScores, Progress, Sampling, thinks_by_name

_CHARS_PER_TOKEN = 3.5  # the tokenizer is remote; budgets use this estimate and leave headroom


class OpenAIBackend:
    def __init__(self, model: str, base_url: str, *, api_key: str | None = None, concurrency: int = 16,
                 timeout: float = 600.0, max_retries: int = 3, context_window: int = 32768,
                 thinks: bool | None = None) -> None:
        self.model, self.base_url = model, base_url
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        # Hosted OpenAI rejects unknown body fields; self-hosted servers take chat_template_kwargs.
        self._template_kwargs = "api.openai.com" not in base_url
        if thinks is None:
            thinks = thinks_by_name(model)
        self.info = BackendInfo(spec=f"openai:{model}@{base_url}", thinks=thinks, context_window=context_window,
                                supports_likelihood=False)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def _client(self):
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                           max_retries=self.max_retries)

    def _run(self, coroutines_factory):
        async def main():
            client = self._client()
            try:
                return await coroutines_factory(client)
            finally:
                await client.close()

        return asyncio.run(main())

    async def _gather(self, client, calls, progress: Progress | None):
        gate = asyncio.Semaphore(self.concurrency)

        async def one(call):
            async with gate:
                result = await call(client)
            if progress:
                progress(1)
            return result

        return await asyncio.gather(*(one(c) for c in calls))

    # ---------------------------------------------------------------------------------------- generate
    def chat_request(self, conversation: Conversation, sampling: Sampling) -> dict:
        """The JSON body of one chat completion: what `generate` sends, and what a batch job's HTTP stage
        (ray.data.llm) posts to /chat/completions, so both ask the server the same thing."""
        body = {"model": self.model, "messages": conversation, "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
        if sampling.top_k and self._template_kwargs:
            body["top_k"] = sampling.top_k
        return body

    def generate(self, prompts: Sequence[Conversation], sampling: Sampling,
                 progress: Progress | None = None) -> list[Completion]:
        def call_for(conversation):
            async def call(client):
                body = self.chat_request(conversation, sampling)
                extra = {"top_k": body.pop("top_k")} if "top_k" in body else None
                try:
                    resp = await client.chat.completions.create(**body, extra_body=extra)
                except Exception as exc:  # an explicit failed completion, not a crash of the whole batch
                    return Completion(text="", finish_reason="error", error=_describe(exc, self.base_url))
                return completion_from_response(resp.model_dump())
            return call

        return self._run(lambda client: self._gather(client, [call_for(p) for p in prompts], progress))

    # ---------------------------------------------------------------------------------- option logprobs
    def option_logprobs(self, prompts: Sequence[Conversation], prefill: str,
                        options: Sequence[str]) -> list[OptionScores]:
        letters = [o.strip() for o in options]
        marker = prefill.split()[-1] if prefill.split() else ""

        def call_for(conversation):
            async def call(client):
                body = {"chat_template_kwargs": {"enable_thinking": False}} if self._template_kwargs else None
                try:
                    resp = await client.chat.completions.create(
                        model=self.model, messages=conversation, max_tokens=16, temperature=0.0,
                        logprobs=True, top_logprobs=20, extra_body=body)
                except Exception as exc:
                    return OptionScores([None] * len(letters), error=_describe(exc, self.base_url))
                usage = getattr(resp.usage, "prompt_tokens", 0) or 0
                content = resp.choices[0].logprobs.content if resp.choices[0].logprobs else None
                if not content:
                    raise ModelUnavailableError(
                        f"{self.base_url} returned no logprobs for {self.model}: the judge needs them. Enable "
                        "logprobs on the server (vLLM/SGLang do by default) or use --method generation.")
                return _read_answer(content, letters, marker, usage)
            return call

        return self._run(lambda client: self._gather(client, [call_for(p) for p in prompts], None))

    def continuation_logprobs(self, prompts, continuations) -> list[float]:
        raise BackendError("the likelihood method needs prompt log-probabilities, which chat servers do not "
                           "return: use a local backend (embedded or hf:) or --method logprobs")


def completion_from_response(data: dict) -> Completion:
    """A chat completion's JSON as a Completion; an error body (no choices) as a failed one."""
    choices = data.get("choices") or []
    if not choices:
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return Completion(text="", finish_reason="error", error=f"no completion in the reply: {message or data}")
    choice = choices[0]
    usage = data.get("usage") or {}
    return Completion(text=_with_reasoning(choice.get("message") or {}),
                      prompt_tokens=usage.get("prompt_tokens") or 0,
                      completion_tokens=usage.get("completion_tokens") or 0,
                      finish_reason="length" if choice.get("finish_reason") == "length" else "stop")


def _with_reasoning(message: dict) -> str:
    """The reply as one text. Servers with a reasoning parser (vLLM, SGLang, DeepSeek's API) move the thinking out
    of `content` into `reasoning_content` (or `reasoning`); put it back in <think> so the parser sees the whole
    reply, as it does from a server without one."""
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning.strip() and "</think>" not in content:
        return f"<think>\n{reasoning.strip()}\n</think>\n\n{content.lstrip()}"
    return content


def _read_answer(content, letters: list[str], marker: str, prompt_tokens: int) -> OptionScores:
    """Find the answer-letter position in the generated tokens and read every option's logprob there."""
    text = ""
    fallback = None
    for position in content:
        token = position.token.strip()
        if token in letters:
            if marker and text.rstrip().lower().endswith(marker.lower()):
                return _scores_at(position, letters, prompt_tokens)
            fallback = fallback or position
        text += position.token
    if fallback is not None:
        return _scores_at(fallback, letters, prompt_tokens)
    return OptionScores([None] * len(letters), prompt_tokens,
                        error=f"no answer letter in the judge reply {text!r}")


def _scores_at(position, letters: list[str], prompt_tokens: int) -> OptionScores:
    found: dict[str, float] = {}
    for entry in position.top_logprobs or []:
        key = entry.token.strip()
        if key in letters:
            found[key] = max(found.get(key, -math.inf), entry.logprob)
    found.setdefault(position.token.strip(), position.logprob)
    return OptionScores([found.get(letter) for letter in letters], prompt_tokens)


def _describe(exc: Exception, base_url: str) -> str:
    return f"{type(exc).__name__} from {base_url}: {exc}"
