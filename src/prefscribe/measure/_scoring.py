"""Score comparisons on every quality of the vocabulary: which of the two items a user who prefers that quality
would take, by answer letters in both orders, from prompt prefill only.

The question is the one a reader of the profile answers, with the quality as the whole preference ("This user
prefers the reply that is more formal. Which reply would this user prefer?"), not "which reply is more formal?": a
quality is then measured as a judge reads it when a profile states it. On three dev sets (P-Soups and two
persona sets, 144 users) profiles measured this way beat those of the plain question on own - another user's
profile by 9.0 points (+0.7 to +17.4; docs/results/measured.md).

A comparison's score on a quality is the log-odds that the user's item is the one so chosen, with the
position bias cancelled: s = ((log p(A) - log p(B)) with the user's item shown first
                              - (log p(A) - log p(B)) with it shown second) / 2.
Small judges answer "A" far more often than "B"; that bias is the same in both orders and drops out, where
averaging the two orders' probabilities would squash the signal towards 0.5.

Centred scores (`score(..., centred=True)`) take each quality's score less the comparison's mean over all its
qualities. A small judge calls the longer, fuller of two replies "more" of nearly everything, humour included: on
a set whose two personas differ in humour, the 1.5B scored the long serious reply the more humorous, and every
quality moved with length. What sets a choice apart is then which qualities the kept item has more of than of
the rest. Off by default: on a dev persona set (formal_casual) the surface qualities were what the judge read in
the targets, and centred profiles lost to raw ones (docs/results/measured.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cache import CachedCalls
from ..judge import MISSING_LOGPROB
from ..llm.base import Conversation, OptionScores, Progress
from ._vocabulary import OPTIONS, PREFILL, Kind, Vocabulary

ROLE = "measure"
TAGS = "+tags"  # the comparison kind of a pair's tag counts: "items+tags"
SHARES = "+shares"  # the kind of a positive-only item's own tags, counted as shares: "items+positive+shares"
ALL = "*"  # the pseudo-tag of every counted positive-only item: the denominator of its person's shares
CENTRED = "+centred"  # the version suffix of tables and evidence made of centred scores


@dataclass(frozen=True)
class Comparison:
    """The user's item against another: the item they rejected, or (positive-only histories) an item
    other people took. `positive` marks the latter: it is calibrated apart. `mine_tags` and `other_tags`: the
    two items' tags (genres, categories, era) where their metadata gives them, else empty."""

    kind: Kind
    context: str | None
    mine: str
    other: str
    positive: bool = False
    mine_tags: tuple[str, ...] = ()
    other_tags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.kind + ("+positive" if self.positive else "")

    @property
    def tag_key(self) -> str:
        return self.key + (SHARES if self.positive else TAGS)

    @property
    def tag_scores(self) -> dict[str, float]:
        """A pair: +1 for each tag only the user's item has, -1 for each only the other has: counted, not asked.
        A side without tags says nothing (its metadata is missing, not empty). A positive-only item: 1 for each
        of its own tags and for ALL, so a person's counts are the shares of their picks that have each tag: a
        pick says how often a tag is among the person's picks, not that they preferred it to one reference
        item drawn at random (that comparison's noise hid most categories on MIND, docs/results/measured.md)."""
        if self.positive:
            return {ALL: 1.0} | {tag: 1.0 for tag in sorted(set(self.mine_tags))} if self.mine_tags else {}
        if not self.mine_tags or not self.other_tags:
            return {}
        mine, other = set(self.mine_tags), set(self.other_tags)
        return {tag: 1.0 if tag in mine else -1.0 for tag in sorted(mine ^ other)}


def is_tags(key: str) -> bool:
    """Whether a comparison kind holds tag counts (pairs' or shares), not the model's scores."""
    return key.endswith((TAGS, SHARES))


@dataclass
class Scored:
    comparison: Comparison
    scores: dict[str, float]   # quality id -> s
    errors: list[str]
    prompt_tokens: int

    @property
    def key(self) -> str:
        return self.comparison.key


def score(calls: CachedCalls, vocabulary: Vocabulary, comparisons: Sequence[Comparison],
          progress: Progress | None = None, *, centred: bool = False) -> list[Scored]:
    """One Scored per comparison. Each (comparison, order) is one group of prompts, one per quality, that
    differ only in the closing question: local backends read the shared part once. One group per backend
    call: in a call of several, the two orders of a comparison would share only the request, and the
    backend would take that as the prefix (`progress` counts groups, two per comparison)."""
    groups: list[list[Conversation]] = []
    for c in comparisons:
        for first, second in ((c.mine, c.other), (c.other, c.mine)):
            groups.append([vocabulary.messages(c.kind, c.context, first, second, q)
                           for q in vocabulary.qualities[c.kind]])
    results = calls.option_logprobs(groups, PREFILL, OPTIONS, role=ROLE, groups_per_call=1,
                                    progress=progress)
    out = []
    for i, c in enumerate(comparisons):
        mine_first, mine_second = results[2 * i], results[2 * i + 1]
        scores: dict[str, float] = {}
        errors: list[str] = []
        for q, a, b in zip(vocabulary.qualities[c.kind], mine_first, mine_second):
            la, lb = _log_odds(a), _log_odds(b)
            if la is None or lb is None:
                errors.append(f"{q.id}: {a.error or b.error or 'neither answer letter observed'}")
                continue
            scores[q.id] = (la - lb) / 2
        if centred and scores:
            mean = sum(scores.values()) / len(scores)
            scores = {q: s - mean for q, s in scores.items()}
        tokens = sum(s.prompt_tokens for s in mine_first + mine_second)
        out.append(Scored(c, scores, errors, tokens))
    return out


def _log_odds(scores: OptionScores) -> float | None:
    """log p(A) - log p(B); a letter a server did not list counts as far less likely than a listed one."""
    la, lb = scores.logprobs
    if la is None and lb is None:
        return None
    return (MISSING_LOGPROB if la is None else la) - (MISSING_LOGPROB if lb is None else lb)

