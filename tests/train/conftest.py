"""Fixtures for the training tests: tiny datasets, and a scripted judge whose answers are known in advance."""

from __future__ import annotations

import math
import re

import pytest

from prefscribe.schema import Interaction

from ..conftest import FakeBackend


def keyword_judge(strength: float = 0.9) -> FakeBackend:
    """A judge that reads the profile: it gives `strength` to the item sharing the profile's topic word
    ("science" or "cooking") and 1 - strength to the other; 0.5 / 0.5 without a topic word."""

    def option_fn(prompt):
        text = prompt[-1]["content"]
        found = re.search(r"## User's Preference\n(.*?)(\n\n|$)", text, re.DOTALL)
        preference = found.group(1) if found else ""
        item_a = re.search(r"## Item A\n(.*?)\n\n", text, re.DOTALL).group(1)
        topic = next((w for w in ("science", "cooking") if w in preference), None)
        if topic is None:
            return [math.log(0.5), math.log(0.5)]
        p_a = strength if topic in item_a else 1 - strength
        return [math.log(p_a), math.log(1 - p_a)]

    return FakeBackend(option_fn=option_fn)


def history(n: int = 5) -> list[Interaction]:
    """Every pair: the user picks the science answer over the cooking one."""
    return [Interaction(context=f"Question {i}?", chosen=f"A science answer {i}.", rejected=f"A cooking answer {i}.")
            for i in range(n)]


@pytest.fixture
def science_history() -> list[Interaction]:
    return history()
