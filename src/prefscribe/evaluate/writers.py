"""Profile writers an evaluation can run, by name: what a writer must offer, what it is built from.

    WRITERS["auto"]      the default: measured where the model can measure and has a population, free otherwise
    WRITERS["free"]      the free-text writer (`infer.Inferrer`), validated among candidates when asked
    WRITERS["measured"]  measured profiles (`measure.MeasuredWriter`): qualities scored, stated against a population
A new writer is one entry: `WRITERS["name"] = factory`, a callable from `WriterParts` to a `ProfileWriter`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..cache import ResultCache
from ..errors import InputError
from ..infer import InferConfig, InferJob, Inferrer, Result
from ..judge import Judge
from ..llm import Backend
from ..llm.base import Progress
from ..measure import MeasureConfig, MeasuredWriter, NoReferenceError
from ..schema import Interaction, Profile
from ..validate import validated_inferrer


@runtime_checkable
class ProfileWriter(Protocol):
    """What the evaluation asks of a profile writer (`infer.Inferrer` is one)."""

    @property
    def writer(self) -> str:
        """Who writes the profiles, as results name it (a new name is a new writer: nothing is reused)."""

    def run(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> list[Result]:
        """One profile (or failure) per job."""

    def stream_many(self, histories: Sequence[Sequence[Interaction]], segments: int,
                    pasts: Sequence[Profile | None] | None = None,
                    progress: Progress | None = None) -> list[list[Result]]:
        """For each history, one result per segment, each updating the previous profile."""


@runtime_checkable
class KeepsState(Protocol):
    """A writer whose profiles depend on what it wrote before in the run (the measured writer compares each
    user with everyone it measured): it keeps that in the run folder, so that a stopped run, resumed, writes
    the profiles an uninterrupted one writes."""

    def keep_state(self, folder: Path) -> None:
        """Keep the state in `folder` from now on, and read back what an earlier run kept there."""


@runtime_checkable
class Surveys(Protocol):
    """A writer that compares each user with the others (the measured writer): it measures all of a run's
    users before writing any profile, so the first users are compared with everyone, as the last are."""

    def survey(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> None:
        """Measure these users' histories (what their profiles will be written from)."""


@dataclass
class WriterParts:
    """What a writer factory builds from.

    backend: the model given as --model; judge_backend: the downstream judge's model (a writer that measures
    with the judge may use it); config: profile style, sampling, prompts; cache: the result cache (None: off);
    candidates / validator: behavioural validation of the free-text writer (validator None: the judge's model);
    measure: the measured writer's settings (None: its defaults).
    """

    backend: Backend
    judge_backend: Backend
    config: InferConfig
    cache: ResultCache | None
    candidates: int = 1
    validator: Backend | None = None
    measure: MeasureConfig | None = None


WriterFactory = Callable[[WriterParts], ProfileWriter]


def free_writer(parts: WriterParts) -> ProfileWriter:
    """The free-text writer (`infer.Inferrer`), validated among `candidates` samples when more than one."""
    inferrer = Inferrer(parts.backend, parts.config, parts.cache)
    checker = Judge(parts.validator or parts.judge_backend, prompts=parts.config.prompts, cache=parts.cache)
    return validated_inferrer(inferrer, checker, parts.candidates)


def measured_writer(parts: WriterParts) -> MeasuredWriter:
    """Measured profiles (`measure.MeasuredWriter`); `measure` carries its settings (calibration, reference)."""
    if parts.candidates > 1:
        raise InputError("--candidates samples free-text profiles; measured profiles are computed, not sampled: "
                         "use --writer free with --candidates", field="candidates")
    return MeasuredWriter(parts.backend, parts.config, parts.cache, measure=parts.measure or MeasureConfig())


@dataclass
class AutoWriter(MeasuredWriter):
    """Measured profiles, and free text for a call whose histories cannot be measured alone: positive-only
    items (clicks, likes) with no other people's items to compare them with. Those profiles name the
    free-text prompts (`prompt_version`), so a reader can tell them apart."""

    fallback: ProfileWriter | None = None  # None: refuse such a call, as `measured` does

    def run(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> list[Result]:
        try:
            return super().run(jobs, progress)  # a missing reference is found before any model call
        except NoReferenceError:
            if self.fallback is None:
                raise
            return self.fallback.run(jobs, progress)

    def survey(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> None:
        try:
            super().survey(jobs, progress)
        except NoReferenceError:  # these people will get free text: nobody to measure
            if self.fallback is None:
                raise


def auto_writer(parts: WriterParts) -> ProfileWriter:
    """Measured profiles where the model gives letter probabilities and a user can be compared with other
    people without more of them (a calibration table, given or shipped: the embedded model ships one); the
    free-text writer otherwise, and when asked for several candidates (a free-text option). On held-out
    persona sets measured profiles carry the user far better than free text (docs/results/measured.md)."""
    if parts.candidates == 1 and parts.backend.info.supports_logprobs:
        writer = AutoWriter(parts.backend, parts.config, parts.cache, measure=parts.measure or MeasureConfig(),
                            fallback=free_writer(parts))
        if writer.compares_alone():
            return writer
    return free_writer(parts)


WRITERS: dict[str, WriterFactory] = {"auto": auto_writer, "free": free_writer, "measured": measured_writer}
DEFAULT_WRITER = "auto"  # measured where it can compare a user with other people, free otherwise


def writer_factory(name: str) -> WriterFactory:
    """The registered writer called `name`; an unknown name is an input error that lists the known ones."""
    if name not in WRITERS:
        raise InputError(f"unknown writer {name!r}; choose from {', '.join(WRITERS)}", field="writer")
    return WRITERS[name]
