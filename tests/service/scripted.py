"""A deterministic model for service tests, registered as backend kind "scripted".

Profiles are derived from the prompt: "Likes <chosen items>. Total <n>." where n adds the interactions
of this update to the "Total" of the past summary, so a chain of updates must add up. Judging (by
log-probabilities or by a generated selection) prefers the item sharing more words with the user's profile. It can be told to fail (a model failure), to
raise (a crash inside the call) or to sleep (to be killed mid-update).

Specs: scripted:ok, scripted:fail (every call fails), scripted:sleep-<seconds>. A subprocess importing
this module can use them with `prefscribe worker --model scripted:...`. When PREFSCRIBE_SCRIPTED_MARK
names a file, each generate call appends a line to it first (so a test knows the model was reached).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prefscribe.llm import BackendInfo, Completion, OptionScores, register

_CHOSEN = re.compile(r"^CHOSEN ITEM BY THE USER: (.*)$", re.MULTILINE)
_TOTAL = re.compile(r"Total (\d+)\.")


def sections(text: str) -> dict[str, str]:
    """The prompt's '## Heading' sections (each up to its first blank line), whatever their order."""
    out = {}
    for block in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        out[heading.strip()] = body.split("\n\n")[0].strip()
    return out


def profile_reply(prompt: list[dict]) -> str:
    user = prompt[-1]["content"]
    chosen = _CHOSEN.findall(user)
    past_total = _TOTAL.search(sections(user).get("Past Preference Summary", ""))
    total = (int(past_total.group(1)) if past_total else 0) + len(chosen)
    return f"Likes {', '.join(c[:40] for c in chosen[-3:])}. Total {total}."


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@dataclass
class ScriptedBackend:
    mode: str = "ok"                       # ok | fail | sleep-<seconds>
    delay: float = 0.0                     # seconds each generate call takes
    fail_next: int = 0                     # the next n prompts come back as model errors
    raise_next: int = 0                    # the next n calls raise
    on_generate: Callable[[list], None] | None = None  # called with the prompts, before replying
    prompts: list = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def __post_init__(self) -> None:
        self.info = BackendInfo(spec=f"scripted:{self.mode}", thinks=False, context_window=8192,
                                supports_logprobs=True, supports_likelihood=False)
        self._lock = threading.Lock()
        if self.mode.startswith("sleep-"):
            self.delay = float(self.mode.split("-", 1)[1])

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompts, sampling, progress=None) -> list[Completion]:
        mark = os.environ.get("PREFSCRIBE_SCRIPTED_MARK")
        if mark:
            with open(mark, "a") as fh:
                fh.write(f"{os.getpid()} {len(prompts)}\n")
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.prompts.extend(prompts)
            raise_now = self.raise_next > 0
            self.raise_next -= 1 if raise_now else 0
        try:
            if self.on_generate:
                self.on_generate(list(prompts))
            if self.delay:
                time.sleep(self.delay)
            if raise_now:
                raise RuntimeError("scripted crash inside the model call")
            out = []
            for prompt in prompts:
                with self._lock:
                    fail = self.mode == "fail" or self.fail_next > 0
                    self.fail_next -= 1 if self.fail_next > 0 else 0
                if fail:
                    out.append(Completion(text="", finish_reason="error", error="scripted model failure"))
                    continue
                if prompt[0]["role"] == "system" and "Tailor your answer" in prompt[0]["content"]:
                    text = f"A reply for: {prompt[-1]['content'][:60]}"
                elif {"Item A", "Item B"} <= set(sections(prompt[-1]["content"])):
                    first, second = self._overlaps(prompt)
                    text = '{"selection": "Item %s"}' % ("A" if first >= second else "B")
                else:
                    text = profile_reply(prompt)
                out.append(Completion(text=text, prompt_tokens=sum(len(m["content"].split()) for m in prompt),
                                      completion_tokens=len(text.split())))
            if progress:
                progress(len(prompts))
            return out
        finally:
            with self._lock:
                self.active -= 1

    @staticmethod
    def _overlaps(prompt: list[dict]) -> tuple[int, int]:
        """Words the profile shares with Item A and with Item B."""
        parts = sections(prompt[-1]["content"])
        pref = _words(parts.get("User's Preference", ""))
        return len(pref & _words(parts.get("Item A", ""))), len(pref & _words(parts.get("Item B", "")))

    def option_logprobs(self, prompts, prefill, options) -> list[OptionScores]:
        out = []
        for prompt in prompts:
            first, second = self._overlaps(prompt)
            out.append(OptionScores(logprobs=[first - 5.0, second - 5.0],
                                    prompt_tokens=len(prompt[-1]["content"].split())))
        return out

    def continuation_logprobs(self, prompts, continuations) -> list[float]:
        raise NotImplementedError("the scripted backend has no likelihoods")


register("scripted", lambda spec: ScriptedBackend(mode=spec.name))
