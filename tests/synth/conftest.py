"""A scripted world for the synthesis tests: real users, fake models whose behaviour each test sets.

- scorer: p(true) of a target pair from `world.tract` (default 0.95), whatever the order (so the averaged
  score is exactly that value);
- teacher: a candidate summary tagged with the pair's key (it sees only the unordered pair, like a real
  teacher), or a broken / leaking reply for the keys the test says; the merge keeps every tag it is given;
- judge: right on a candidate unless its key is in `world.wrong`; right on a merged summary exactly for the
  targets whose tag the summary carries.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

import pytest

from prefscribe.data import load
from prefscribe.schema import Interaction, UserRecord
from prefscribe.synth import SynthModels

from ..conftest import DATA, FakeBackend

TAG = re.compile(r"tag-([0-9a-f]{10})")


def pair_key(x: str, y: str) -> str:
    return hashlib.sha1("\x00".join(sorted([x, y])).encode()).hexdigest()[:10]


def _log(p: float) -> float:
    return math.log(min(max(p, 1e-12), 1 - 1e-12))


@dataclass
class World:
    users: list[UserRecord]
    tract: dict[str, float] = field(default_factory=dict)   # pair key -> p(true) from the scorer
    wrong: set[str] = field(default_factory=set)            # candidates the judge gets wrong
    broken: set[str] = field(default_factory=set)           # teacher never closes </think>
    leaky: set[str] = field(default_factory=set)            # teacher names a target item
    default_tract: float = 0.95

    def __post_init__(self) -> None:
        self.items: set[str] = set()
        self.chosen_of: dict[str, str] = {}
        for user in self.users:
            pairs = list(user.history) + ([user.target] if user.target else [])
            for h in pairs:
                self.items.add(h.chosen)
                if h.rejected:
                    self.items.add(h.rejected)
                    self.chosen_of[pair_key(h.chosen, h.rejected)] = h.chosen
        self.teacher = FakeBackend(reply_fn=self._teacher)
        self.judge = FakeBackend(option_fn=self._judge)
        self.scorer = FakeBackend(option_fn=self._scorer)

    def models(self) -> SynthModels:
        return SynthModels(teacher=self.teacher, judge=self.judge, scorer=self.scorer)

    def key(self, h: Interaction) -> str:
        return pair_key(h.chosen, h.rejected)

    # ------------------------------------------------------------------------- reading prompts
    def _known_prefix(self, text: str) -> str:
        matches = [item for item in self.items if text.startswith(item)]
        assert matches, f"no known item at {text[:80]!r}"
        return max(matches, key=len)

    def shown_pair(self, content: str, a_marker: str, b_marker: str) -> tuple[str, str]:
        """(Item A, Item B) of a prompt: the one place that knows how templates show the pair."""
        rest = content.rpartition(a_marker)[2]
        a = self._known_prefix(rest)
        b = self._known_prefix(rest.partition(b_marker)[2])
        return a, b

    def judge_pair(self, prompt) -> tuple[str, str]:
        return self.shown_pair(prompt[-1]["content"], "## Item A\n", "## Item B\n")

    def generation_pair(self, prompt) -> tuple[str, str]:
        return self.shown_pair(prompt[-1]["content"], "\nItem A: ", "\nItem B: ")

    @staticmethod
    def is_generation(prompt) -> bool:
        return "## A Later Decision" in prompt[-1]["content"]

    # ------------------------------------------------------------------------------ behaviours
    def _p_first(self, a: str, b: str, p_true: float) -> list[float]:
        p_first = p_true if self.chosen_of[pair_key(a, b)] == a else 1.0 - p_true
        return [_log(p_first), _log(1.0 - p_first)]

    def _scorer(self, prompt):
        a, b = self.judge_pair(prompt)
        return self._p_first(a, b, self.tract.get(pair_key(a, b), self.default_tract))

    def _judge(self, prompt):
        a, b = self.judge_pair(prompt)
        key = pair_key(a, b)
        content = prompt[-1]["content"]
        if "MERGED" in content:
            right = key in TAG.findall(content)
        else:
            right = key not in self.wrong
        return self._p_first(a, b, 0.9 if right else 0.1)

    def _teacher(self, prompt) -> str:
        if self.is_generation(prompt):
            a, b = self.generation_pair(prompt)
            key = pair_key(a, b)
            if key in self.broken:
                return "<think>I keep thinking and never stop"
            if key in self.leaky:
                return f"<think>Compared the items.</think>\nThe user would like {a}. tag-{key}"
            return f"<think>Chosen items share a theme the rejected lack.</think>\nThe user prefers a theme. tag-{key}"
        tags = sorted(set(TAG.findall(prompt[-1]["content"])))
        return ("<think>The chosen items share themes; the rejected ones lack them.</think>\n"
                "MERGED. The user prefers these themes. " + " ".join(f"tag-{t}" for t in tags))


@pytest.fixture(scope="session")
def data_root():
    if not DATA.is_dir():
        pytest.skip(f"real benchmark data not found at {DATA}; set PREFSCRIBE_DATA")
    return DATA


@pytest.fixture(scope="session")
def movielens_users(data_root) -> list[UserRecord]:
    return load("movielens", data_root / "movielens", limit=24, seed=0, max_history=30)


@pytest.fixture(scope="session")
def psoups_users(data_root) -> list[UserRecord]:
    return load("psoups", data_root / "psoups" / "student_phd.json", limit=60, seed=0)


@pytest.fixture
def world():
    return World
