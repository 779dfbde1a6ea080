"""Measured profiles: score each of a user's choices on a vocabulary of qualities, keep the qualities on which
the user's choices depart from other people's, and state them as short readable text with their evidence.

Small models write their own prior when asked to summarize a user ("prefers detailed, expert replies" for
nearly everyone), but answer "this user prefers the reply that is X: which would they prefer?" consistently.
So the model only measures; the statistics decide what the profile says:

    z = (the user's mean scores - the population's) projected on an axis of taste / (its noise / sqrt(n))

where the axes are the directions in which the population's people differ beyond the judge's noise (_axes.py,
found without labels); an axis is stated when |z| >= the threshold, named by the qualities that move most with
it and on which the user's own choices went its way, each with its evidence; after the axes, any single quality
on which the user stands out alone (|z| >= 2.5). A population too small for axes states single qualities only.
An update adds the new comparisons' scores to the counts kept with the profile (Profile.evidence), so it reads
only the new pairs."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..cache import CachedCalls
from ..data import clean_tags, user_rng
from ..errors import InputError
from ..infer import InferJob, Inferrer, Result, check_past, profile_id
from ..llm.base import Progress
from ..schema import Evidence, InferenceFailure, Interaction, Profile, QualityEvidence, Usage
from ._axes import MIN_PEOPLE as AXIS_PEOPLE
from ._axes import Axis, position
from ._calibration import QUALITY_THRESHOLD, Calibration, QualityStats, base_model, population, shipped
from ._population import Person, Population, person_digest, person_of
from ._scoring import ALL, CENTRED, SHARES, Comparison, Scored, is_tags, score
from ._vocabulary import NOUNS, Kept, KeptTag, Vocabulary

MIN_PEOPLE = 8  # a run's own population is used as the reference only from this many people
NAMED_PER_AXIS = 3  # qualities that name an axis in the text
TAG_THRESHOLD = 2.0  # |z| of one tag's count: a data set has dozens of tags, so the bar is high
MIN_TAG_COMPARISONS = 3  # a tag is stated only from this many comparisons where one item had it


class NoReferenceError(InputError):
    """A positive-only item with no other people's item to be compared with (raised before any model call)."""


@dataclass
class MeasureConfig:
    """How measured profiles are written.

    calibration: a Calibration table; "shipped" (the people this writer has measured when they are enough to
        find axes of taste (16), else the package's table for the model, completed by those people); or "run"
        (always the people this writer has measured: every call's, the current one included, at least
        MIN_PEOPLE). The people a population is made of are the best reference for each other: a table's axes
        are another population's. An evaluation measures all its users first (survey) and keeps them in its
        run folder (keep_state), so a resumed evaluation compares with the people an uninterrupted one did.
    threshold: |z| on an axis from which it is stated; None takes the table's (chosen on dev data). Single
        qualities take it when set and the population has no axes, else QUALITY_THRESHOLD.
    max_qualities: at most this many statements (qualities named), strongest axis first.
    max_comparisons: only the most recent comparisons of a history are measured (a long one is cut).
    max_tags: at most this many tags (genres, categories, era: from the items' metadata, `meta.tags` and
        `meta.rejected_tags`) stated besides the qualities, strongest first.
    tag_threshold: |z| of a tag's count against other people's from which it is stated.
    ask_tagged_items: also ask the model about items whose tags are known (False: such comparisons are measured
        by their tags alone, with no model call: a catalogue with genres or categories, profiled cheaply).
    reference: items other people took, compared with a positive-only history's items (a run of several
        people also uses each other's items).
    seed: which reference item each positive-only item is compared with.
    centred: score each quality against the comparison's other qualities (see _scoring): a small judge calls
        the fuller item "more" of everything. Tables and evidence of centred scores are versioned apart.
    """

    calibration: Calibration | Literal["shipped", "run"] = "shipped"
    threshold: float | None = None
    max_qualities: int = 4
    max_comparisons: int = 12
    max_tags: int = 4
    ask_tagged_items: bool = True
    tag_threshold: float = TAG_THRESHOLD
    reference: Sequence[str] = ()
    seed: int = 0
    centred: bool = False


@dataclass
class MeasuredWriter(Inferrer):
    """An Inferrer whose profiles are measured, not generated. Same interface: run, stream_many, writer."""

    measure: MeasureConfig = field(default_factory=MeasureConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.vocabulary = Vocabulary(self.prompts)
        # What tables and evidence are made of: the questions asked, and how their answers are scored.
        self.scale = self.vocabulary.version + (CENTRED if self.measure.centred else "")
        self._population = Population()  # each person measured so far, in order

    def compares_alone(self) -> bool:
        """Whether a user can be profiled alone: a table is given, or the package ships one for this model and
        vocabulary. Otherwise the writer needs MIN_PEOPLE people in one call or run to compare them with."""
        chosen = self.measure.calibration
        if isinstance(chosen, Calibration):
            return True
        return chosen == "shipped" and shipped(self.backend.info.spec, self.scale) is not None

    def keep_state(self, folder: Path) -> None:
        """Keep the people this writer measures in `folder` (measured.jsonl), and read back those an earlier
        run kept there: an evaluation resumed in its run folder compares with whom the stopped one did."""
        self._population.keep(Path(folder) / "measured.jsonl", self.writer)

    @property
    def writer(self) -> str:
        """Results name the settings that change the text, so runs with other settings never mix."""
        m = self.measure
        table = m.calibration if isinstance(m.calibration, str) else f"table:{_table_id(m.calibration)}"
        threshold = "table" if m.threshold is None else f"{m.threshold:g}"
        return (f"measured(z={threshold},k={m.max_qualities},n={m.max_comparisons},"
                f"tags={m.max_tags}@{m.tag_threshold:g}+shares{'' if m.ask_tagged_items else ',tags-only'},{table}"
                f"{',centred' if m.centred else ''})"
                f"@{self.backend.info.spec}")

    def run(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> list[Result]:
        for job in jobs:
            check_past(job.past)
            if not job.history and job.past is None:
                raise InputError("empty history and no past profile: nothing to infer from")
        plans = self.comparisons(jobs)
        scored: list[list[Scored]] = []
        for comparisons in plans:
            scored.append(self._score(comparisons))
            if progress:
                progress(1)
        # An update's new pairs are part of a person, not a person: only whole histories join the population.
        people = self._population.add([(person_digest(comparisons), person_of(person))
                                       for job, comparisons, person in zip(jobs, plans, scored)
                                       if person and job.past is None])
        table = self._calibration(scored, people)
        return [self._profile(job, user, table) if job.history else job.past
                for job, user in zip(jobs, scored)]  # type: ignore[misc]

    def survey(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> None:
        """Measure these people before writing any of their profiles, so that each is compared with all of
        them (an evaluation, a batch), not with those written before it."""
        plans = self.comparisons(jobs)
        people = []
        for comparisons in plans:
            if comparisons:
                people.append((person_digest(comparisons),
                               person_of(self._score(comparisons))))
            if progress:
                progress(1)
        self._population.add(people)

    def _score(self, comparisons: list[Comparison]) -> list[Scored]:
        """The model's scores of each comparison it is asked about; a comparison of tagged items, when the
        config says tags alone measure them, gets no model call (its Scored has no scores)."""
        asks = [not self._tags_alone(c.kind, bool(c.tag_scores)) for c in comparisons]
        asked = [c for c, ask in zip(comparisons, asks) if ask]
        calls = CachedCalls(self.backend, self.cache, self.vocabulary.version)
        scores = iter(score(calls, self.vocabulary, asked, centred=self.measure.centred) if asked else [])
        return [next(scores) if ask else Scored(c, {}, [], 0) for c, ask in zip(comparisons, asks)]

    def _tags_alone(self, kind: str, tagged: bool) -> bool:
        """Whether a comparison is measured by its items' tags alone, with no model call (`--tags-only`): an
        item's tags are counted; a reply's never are, so a reply is always read."""
        return tagged and kind == "items" and not self.measure.ask_tagged_items

    # ------------------------------------------------------------------------------------ comparisons
    def comparisons(self, jobs: Sequence[InferJob]) -> list[list[Comparison]]:
        """Each job's most recent comparisons: its pairs, and its positive-only items against reference items."""
        recent = [list(job.history)[-self.measure.max_comparisons:] for job in jobs]
        pools: dict[tuple[str, str | None], list] = {}  # by kind and domain: a film is compared with films
        for u, history in enumerate(recent):
            for i in history:
                pools.setdefault((_kind(i), i.domain), []).append((u, i.chosen, _tags(i, "tags")))
        out = []
        for u, history in enumerate(recent):
            comparisons = []
            for item in history:
                kind = _kind(item)
                mine = _tags(item, "tags")
                if item.rejected is not None:
                    comparisons.append(Comparison(kind, item.context, item.chosen, item.rejected, mine_tags=mine,
                                                  other_tags=_tags(item, "rejected_tags")))
                elif self._tags_alone(kind, bool(mine)):  # counted by its tags: no reference item needed
                    comparisons.append(Comparison(kind, None, item.chosen, "", positive=True, mine_tags=mine))
                else:
                    other, tags = self._reference(u, item, _pool(pools, item, u))
                    comparisons.append(Comparison(kind, None, item.chosen, other, positive=True, mine_tags=mine,
                                                  other_tags=tags))
            out.append(comparisons)
        return out

    def _reference(self, user: int, item: Interaction, others: list[tuple[str, tuple[str, ...]]]
                   ) -> tuple[str, tuple[str, ...]]:
        """An item other people took, and its tags, to compare a positive-only choice with (seeded by the item
        itself, so a user's profile does not depend on who else is in the run beyond the pool)."""
        tags = dict(sorted(others, key=lambda pair: pair[0]))  # one text's tags, whoever took it
        pool = [t for t in list(self.measure.reference) + [t for t, _ in others] if t != item.chosen]
        if not pool:
            raise NoReferenceError("a positive-only history (no rejected items) is measured against items other "
                                   "people took: profile several people together, or give reference items "
                                   "(MeasureConfig.reference; `prefscribe infer --reference FILE`)", field="rejected")
        other = user_rng(self.measure.seed, "reference", item.chosen).choice(sorted(set(pool)))
        return other, tags.get(other, ())

    # ------------------------------------------------------------------------------------ calibration
    def _calibration(self, scored: list[list[Scored]], measured: list[Person]) -> Calibration:
        """The table to compare with: the configured one, the package's, and the people measured so far
        (`measured`: this call's among them) for what those lack."""
        spec = self.backend.info.spec
        chosen = self.measure.calibration
        own_first = chosen == "shipped" and len(measured) >= AXIS_PEOPLE
        table = chosen if isinstance(chosen, Calibration) else (
            shipped(spec, self.scale) if chosen == "shipped" and not own_first else None)
        if table is not None and (table.model, table.vocabulary) != (base_model(spec), self.scale):
            raise InputError(f"the calibration table is for {table.model} with vocabulary {table.vocabulary}, not "
                             f"{base_model(spec)} with {self.scale}: build one for this model with "
                             "`prefscribe calibrate`", field="calibration")
        needed = {s.comparison.key for person in scored for s in person if s.scores or s.errors}
        missing = {key for key in needed if table is None or not table.covers(key)}
        if not missing:
            return _with_tags(table, measured, spec, self.scale)
        people = len(measured)
        if people < MIN_PEOPLE:
            raise InputError(
                f"no calibration for {spec} on {', '.join(sorted(missing))} comparisons (vocabulary "
                f"{self.scale}): build one with `prefscribe calibrate`, profile at least "
                f"{MIN_PEOPLE} people together to compare them with each other, or write a free-text profile "
                "(--writer free)")
        own = population([[m for m in person if m.key in missing or is_tags(m.key)] for person in measured],
                         model=spec, vocabulary=self.scale, source={"from": "run", "people": people})
        if table is None:
            return own
        return table.model_copy(update={"stats": dict(table.stats) | own.stats, "axes": table.axes | own.axes,
                                        "source": {**table.source, "completed_by_run": people}})

    # ---------------------------------------------------------------------------------------- profile
    def _profile(self, job: InferJob, scored: list[Scored], table: Calibration) -> Result:
        usage = Usage(prompt_tokens=sum(s.prompt_tokens for s in scored))
        common = {"model": self.backend.info.spec, "prompt_version": self.vocabulary.text_version, "usage": usage}
        errors = [f"comparison {i + 1}: {e}" for i, s in enumerate(scored) for e in s.errors]
        if errors:
            return InferenceFailure(error="unreadable measurements: " + "; ".join(errors[:5]), **common)
        evidence = _start(job.past, self.scale, _table_id(table))
        for s in scored:
            for quality, value in s.scores.items():
                stats = table.get(s.comparison.key, quality)
                if stats is None:
                    continue
                entry = evidence.qualities.setdefault(f"{s.comparison.key}:{quality}", QualityEvidence())
                entry.n += 1
                entry.total += value
                entry.above += value > stats.mean
            for tag, value in s.comparison.tag_scores.items():  # counted for every tag: a table may lack rare ones
                entry = evidence.qualities.setdefault(f"{s.comparison.tag_key}:{tag}", QualityEvidence())
                entry.n += 1
                entry.total += value
                entry.above += value > 0
        kept, ranked = self._kept(evidence, table)
        tags = self._tags(evidence, table)
        text = self.vocabulary.render(kept, tags, measured=(job.past.covers if job.past else 0) + len(scored))
        if evidence.preamble:
            text = evidence.preamble.rstrip() + "\n" + text
        reasoning = "z against other people: " + ", ".join(f"{name} {z:+.1f}" for name, z in ranked[:8])
        parent = profile_id(job.past) if job.past else None
        covers = (job.past.covers if job.past else 0) + min(len(job.history), self.measure.max_comparisons)
        return Profile(profile=text, reasoning=reasoning, covers=covers, parent=parent, evidence=evidence,
                       **common)

    def _kept(self, evidence: Evidence, table: Calibration) -> tuple[list[Kept], list[tuple[str, float]]]:
        """The statements, strongest first, and every axis's or quality's z (for the reasoning). Where the
        population has axes of taste, the user's position on each, and after them any single quality on which
        the user departs beyond QUALITY_THRESHOLD (a taste the population's main axes do not carry: a reader of
        science news among people who differ mostly on celebrity news); else single qualities only."""
        threshold = self.measure.threshold if self.measure.threshold is not None else table.threshold
        found: list[tuple[float, list[Kept]]] = []  # axes
        beside: list[tuple[float, list[Kept]]] = []  # single qualities
        ranked: list[tuple[str, float]] = []
        for key in sorted({name.rsplit(":", 1)[0] for name in evidence.qualities
                           if not is_tags(name.rsplit(":", 1)[0])}):
            singles = self._singles(evidence, table, key)
            axes = table.axes.get(key) or []
            for number, axis in enumerate(axes, start=1):
                z = self._position(evidence, table, key, axis)
                if z is None:
                    continue
                ranked.append((f"{key}:axis{number}", z))
                if abs(z) >= threshold and (named := self._named(evidence, key, axis, z, dict(singles))):
                    found.append((z, named))
            bar = QUALITY_THRESHOLD if axes or self.measure.threshold is None else self.measure.threshold
            for name, z in singles:
                if not axes:
                    ranked.append((name, z))
                if abs(z) >= bar:
                    beside.append((z, [self._statement(evidence, name, z)]))
        # The axes first (they pool a user's comparisons over qualities: the surer finding), then single qualities.
        found.sort(key=lambda pair: -abs(pair[0]))
        beside.sort(key=lambda pair: -abs(pair[0]))
        ranked.sort(key=lambda pair: -abs(pair[1]))
        kept: list[Kept] = []
        for _, statements in found + beside:
            for statement in statements:
                if len(kept) < self.measure.max_qualities and statement.pole not in {k.pole for k in kept}:
                    kept.append(statement)
        return kept, ranked

    @staticmethod
    def _singles(evidence: Evidence, table: Calibration, key: str) -> list[tuple[str, float]]:
        """Each quality of this comparison kind the table covers, with the user's z on it alone."""
        out = []
        for name, entry in evidence.qualities.items():
            stats = table.get(key, name.rsplit(":", 1)[1]) if name.rsplit(":", 1)[0] == key else None
            if stats is not None and entry.n:
                out.append((name, _z(entry, stats)))
        return out

    def _tags(self, evidence: Evidence, table: Calibration) -> list[KeptTag]:
        """The tags the user's choices take or pass over more than other people's, strongest first: from pairs
        (the tag of the item taken against the one passed over) and from positive-only picks (the tag's share of
        the user's picks against other people's)."""
        found = []
        for key in sorted({name.rsplit(":", 1)[0] for name in evidence.qualities}):
            if key.endswith(SHARES):
                found += self._shared(evidence, table, key)
            elif is_tags(key):
                found += self._paired(evidence, table, key)
        found.sort(key=lambda t: -t.strength)
        stated: dict[str, KeptTag] = {}
        for t in found:  # a tag of two comparison kinds is stated once, its strongest
            stated.setdefault(t.tag, t)
        return list(stated.values())[:self.measure.max_tags]

    def _paired(self, evidence: Evidence, table: Calibration, key: str) -> list[KeptTag]:
        """Tags of pairs, each against other people's counts; where those do not cover it (too few people, a
        rare tag), against no leaning (mean 0)."""
        found = []
        for name, entry in evidence.qualities.items():
            if name.rsplit(":", 1)[0] != key or entry.n < MIN_TAG_COMPARISONS:
                continue
            tag = name.rsplit(":", 1)[1]
            stats = table.get(key, tag) or QualityStats(mean=0.0, std=1.0, within_std=1.0, comparisons=0, people=0)
            z = _z(entry, stats)
            took = round((entry.total / entry.n + 1) / 2 * entry.n)
            # A tag is a count, with no ties: state it only when most of the user's own choices go its way, so
            # a reader never sees "avoids IMAX (2 of 4 choices)" because other people took it even more often.
            if abs(z) >= self.measure.tag_threshold and 2 * (took if z > 0 else entry.n - took) > entry.n:
                found.append(KeptTag(tag=tag, likes=z > 0, took=took, n=entry.n,
                                     others=round(50 * (stats.mean + 1)) if stats.people else None, z=z,
                                     strength=abs(z)))
        return found

    def _shared(self, evidence: Evidence, table: Calibration, key: str) -> list[KeptTag]:
        """Tags whose share of the user's picks departs from other people's: each tag other people's picks
        have (a tag the user never picked can be one they pass over), none without other people to compare
        with. A liking needs two picks: one pick of a rare tag is a large share of nothing. Ordered by how far
        the share departs: a category the user reads twice as often as others decides more of their choices
        than a rare subcategory picked twice (docs/results/measured.md, session 20)."""
        picks = evidence.qualities.get(f"{key}:{ALL}")
        if picks is None or picks.n < MIN_TAG_COMPARISONS:
            return []
        found = []
        for name, stats in table.stats.items():
            tag = name.rsplit(":", 1)[1]
            if name.rsplit(":", 1)[0] != key or tag == ALL:
                continue
            took = entry.n if (entry := evidence.qualities.get(name)) else 0
            z = _z(QualityEvidence(n=picks.n, total=took), stats)  # the share against others', in noise units
            if abs(z) >= self.measure.tag_threshold and (z < 0 or took >= 2):
                found.append(KeptTag(tag=tag, likes=z > 0, took=took, n=picks.n, others=round(100 * stats.mean),
                                     z=z, strength=abs(took / picks.n - stats.mean)))
        return found

    @staticmethod
    def _position(evidence: Evidence, table: Calibration, key: str, axis: Axis) -> float | None:
        entries = {q: evidence.qualities.get(f"{key}:{q}") for q in axis.weights}
        if any(e is None or not e.n for e in entries.values()):
            return None
        means = {q: e.total / e.n for q, e in entries.items()}  # type: ignore[union-attr]
        return position(axis, means, table.centre(key), min(e.n for e in entries.values()))  # type: ignore[union-attr]

    def _named(self, evidence: Evidence, key: str, axis: Axis, z: float, single: dict[str, float]) -> list[Kept]:
        """An axis in words: the qualities that move most with it, each on the pole the user's choices go, passing
        over any on which the user's own choices did not go that way: an axis mixes qualities, and a reader must
        not see "less political (chose it in 1 of 6)" named for a celebrity axis. On the others a user's few
        comparisons are noisy, and the axis pools them: no bar on each alone."""
        named = []
        for quality, load in sorted(axis.loadings.items(), key=lambda pair: -abs(pair[1])):
            pole = z if load > 0 else -z
            if single.get(f"{key}:{quality}", 0.0) * pole > 0 and len(named) < NAMED_PER_AXIS:
                named.append(self._statement(evidence, f"{key}:{quality}", pole))
        return named

    def _statement(self, evidence: Evidence, name: str, z: float) -> Kept:
        key, quality_id = name.rsplit(":", 1)
        kind = key.split("+")[0]
        q = self.vocabulary.quality(kind, quality_id)  # type: ignore[arg-type]
        entry = evidence.qualities[name]
        more = z > 0
        return Kept(nouns=NOUNS[kind][1], pole=q.more if more else q.less,  # type: ignore[index]
                    short=q.more_short if more else q.less_short,
                    agree=entry.above if more else entry.n - entry.above, n=entry.n, z=z)


def _kind(item: Interaction) -> str:
    return "replies" if item.context else "items"


def _pool(pools: dict[tuple[str, str | None], list], item: Interaction, user: int
          ) -> list[tuple[str, tuple[str, ...]]]:
    """Other people's items (text, tags) to compare `user`'s positive-only `item` with: those of its domain
    when the history names one and others took items of it (a film against films, not headlines), else every
    item of its kind."""
    kind = _kind(item)

    def others(entries) -> list[tuple[str, tuple[str, ...]]]:
        return [(t, g) for v, t, g in entries if v != user and t != item.chosen]

    same = others(pools.get((kind, item.domain), ())) if item.domain is not None else []
    return same or others(e for (k, _), entries in pools.items() if k == kind for e in entries)


def _tags(item: Interaction, key: str) -> tuple[str, ...]:
    """An item's tags from the interaction's meta (`tags`: the chosen item's; `rejected_tags`)."""
    value = item.meta.get(key) or ()
    if isinstance(value, str) or not all(isinstance(t, str) for t in value):
        raise InputError(f"meta.{key} must be a list of strings, got {value!r}", field=f"meta.{key}")
    return tuple(clean_tags(value))


def _z(entry: QualityEvidence, stats: QualityStats) -> float:
    return (entry.total / entry.n - stats.mean) / (stats.within_std / math.sqrt(entry.n))


def _with_tags(table: Calibration | None, measured: list[Person], model: str, vocabulary: str) -> Calibration:
    """The table (none: no model scores to compare) with the tag counts of the people measured so far: tags are
    a data set's own (its genres, its categories), so no table made elsewhere knows them. Too few people: the
    table as it is."""
    table = table or Calibration(model=base_model(model), vocabulary=vocabulary, stats={})
    tagged = [[m for m in person if is_tags(m.key)] for person in measured]
    if len(measured) < MIN_PEOPLE or not any(tagged):
        return table
    own = population(tagged, model=model, vocabulary=vocabulary)
    return table.model_copy(update={"stats": dict(table.stats) | own.stats})


def _table_id(table: Calibration) -> str:
    return hashlib.sha256(table.model_dump_json().encode()).hexdigest()[:12]


def _start(past: Profile | None, vocabulary: str, calibration: str) -> Evidence:
    """The evidence an update adds to: the past profile's, when it was measured with this vocabulary; a profile
    measured with another vocabulary starts again (its counts mean other questions; its own preamble stays);
    any other past text (a person's edit, a free-text profile) is kept as the preamble."""
    if past is None:
        return Evidence(vocabulary=vocabulary, calibration=calibration)
    if past.evidence is not None and past.author == "model":
        if past.evidence.vocabulary == vocabulary:
            return past.evidence.model_copy(deep=True, update={"calibration": calibration})
        return Evidence(vocabulary=vocabulary, calibration=calibration, preamble=past.evidence.preamble)
    return Evidence(vocabulary=vocabulary, calibration=calibration, preamble=past.profile)
