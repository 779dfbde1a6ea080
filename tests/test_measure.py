"""Measured profiles: scores, calibration, text, streaming updates and positive-only histories, on a scripted
model whose answers depend on the texts it is shown, and end to end on a tiny random model."""

from __future__ import annotations

import json
import math
import re
import zlib

import pytest

from prefscribe.cache import CachedCalls, ResultCache
from prefscribe.errors import InputError
from prefscribe.evaluate.writers import DEFAULT_WRITER, WriterParts, writer_factory
from prefscribe.infer import InferConfig, InferJob
from prefscribe.llm.base import BackendInfo
from prefscribe.measure import (
    MIN_TAG_COMPARISONS,
    Axis,
    Calibration,
    Comparison,
    Kept,
    KeptTag,
    MeasureConfig,
    MeasuredWriter,
    QualityStats,
    Vocabulary,
    population,
    read,
    score,
    shipped,
)
from prefscribe.prompts import get_prompts
from prefscribe.schema import Evidence, Interaction, Profile, QualityEvidence

A_BIAS = 2.0  # the scripted judge leans to "A" whatever it reads, as small judges do
MEASURING = (get_prompts().folder / "measure_system.txt").read_text(encoding="utf-8").strip()


def _texts(prompt: list[dict]) -> tuple[str, str, str]:
    user = prompt[-1]["content"]
    first = re.search(r"## (?:Reply|Item) A\n(.*?)\n\n## ", user, re.S).group(1)
    second = re.search(r"## (?:Reply|Item) B\n(.*?)\n\n## ", user, re.S).group(1)
    noun, quality = re.search(r"prefers the (reply|item) that is (.*)\.\n", user).groups()
    return first, second, f"{noun} is {quality}"  # the quality asked about, as "reply is <more>"


def length_judge(prompt: list[dict]) -> list[float]:
    """Says which text is longer when asked about length, with an A bias; knows nothing else (noise-free 0)."""
    first, second, question = _texts(prompt)
    lean = 0.0
    if question.startswith(("reply is longer", "item is longer")):
        lean = 0.1 * (len(first) - len(second))
    return [A_BIAS + lean / 2, -lean / 2]


def _user(long: bool, n: int = 4, offset: int = 0) -> list[Interaction]:
    short_reply, long_reply = "Yes.", "Yes, and here is a much longer reply with many more words in it."
    out = []
    for i in range(n):
        chosen, rejected = (long_reply, short_reply) if long else (short_reply, long_reply)
        out.append(Interaction(context=f"question {offset + i}?", chosen=chosen + f" ({i})",
                               rejected=rejected + f" ({i})"))
    return out


def _noisy_judge(prompt: list[dict]) -> list[float]:
    """The length judge plus a deterministic per-prompt wobble on every quality, so spreads are not zero."""
    logprobs = length_judge(prompt)
    wobble = (sum(map(ord, prompt[-1]["content"])) % 17) / 40
    return [logprobs[0] + wobble, logprobs[1]]


def test_a_score_cancels_the_position_bias(fake_backend):
    backend = fake_backend(option_fn=length_judge)
    vocab = Vocabulary(get_prompts())
    calls = CachedCalls(backend, None, vocab.version)
    [long_kept], [short_kept] = (score(calls, vocab, [Comparison("replies", "q?", mine, other)])
                                 for mine, other in (("a long reply here", "short"), ("short", "a long reply here")))
    assert long_kept.scores["length"] == pytest.approx(0.1 * (len("a long reply here") - len("short")))
    assert short_kept.scores["length"] == pytest.approx(-long_kept.scores["length"])
    assert long_kept.scores["formal"] == pytest.approx(0.0)  # the A bias is gone, not halved
    assert set(long_kept.scores) == {q.id for q in vocab.qualities["replies"]}


def test_every_quality_of_one_comparison_and_order_goes_in_one_call(fake_backend):
    backend = fake_backend(option_fn=length_judge)
    vocab = Vocabulary(get_prompts())
    score(CachedCalls(backend, None, vocab.version), vocab, [Comparison("replies", "q?", "a", "b")])
    calls = [prompts for kind, prompts in backend.calls if kind == "options"]
    assert [len(c) for c in calls] == [len(vocab.qualities["replies"])] * 2
    shared = [p[-1]["content"].split("## User's Preference", 1)[0] for p in calls[0]]
    assert len(set(shared)) == 1  # they differ only in the quality asked about, after both texts


def _writer(backend, **config) -> MeasuredWriter:
    return MeasuredWriter(backend, measure=MeasureConfig(calibration="run", **config))


def test_profiles_state_what_sets_a_user_apart_from_the_run(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    people = [_user(long=i % 2 == 0, offset=10 * i) for i in range(10)]
    profiles = writer.run([InferJob(h) for h in people])
    assert all(isinstance(p, Profile) for p in profiles)
    for i, profile in enumerate(profiles):
        if i % 2 == 0:
            assert "longer and more detailed (4 of 4 choices)" in profile.profile
        else:
            assert "shorter and more concise (4 of 4 choices)" in profile.profile
        assert profile.covers == 4 and profile.evidence.qualities["replies:length"].n == 4
        assert profile.prompt_version == writer.vocabulary.text_version
        assert profile.usage.prompt_tokens > 0
    # Opposite users get opposite texts: the profile carries the user, not the model's prior.
    assert profiles[0].profile != profiles[1].profile


def test_a_quality_everyone_shares_is_not_stated(fake_backend):
    # Everyone chose the longer reply: it says nothing about any one of them.
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    profiles = writer.run([InferJob(_user(long=True, offset=10 * i)) for i in range(10)])
    assert not any("longer" in p.profile for p in profiles)


def test_an_update_reads_only_the_new_pairs_and_adds_their_evidence(fake_backend):
    backend = fake_backend(option_fn=_noisy_judge)
    vocab = Vocabulary(get_prompts())
    table = population(
        [score(CachedCalls(backend, None, vocab.version), vocab,
               [Comparison("replies", i.context, i.chosen, i.rejected) for i in _user(u % 2 == 0, offset=10 * u)])
         for u in range(10)],
        model="fake:test", vocabulary=vocab.version)
    writer = MeasuredWriter(backend, measure=MeasureConfig(calibration=table))
    history = _user(long=False, n=6, offset=500)
    whole = writer.run([InferJob(history)])[0]
    first = writer.run([InferJob(history[:4])])[0]
    backend.calls.clear()
    updated = writer.run([InferJob(history[4:], past=first)])[0]
    asked = [p for kind, prompts in backend.calls for p in prompts]
    assert all("question 504" in p[-1]["content"] or "question 505" in p[-1]["content"] for p in asked)
    assert updated.covers == 6 and updated.parent is not None
    for name, entry in whole.evidence.qualities.items():
        again = updated.evidence.qualities[name]
        assert (again.n, again.above) == (entry.n, entry.above)
        assert again.total == pytest.approx(entry.total)
    assert updated.profile == whole.profile


def test_an_update_does_not_count_its_new_pairs_as_another_person(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    people = [_user(long=i % 2 == 0, n=6, offset=10 * i) for i in range(10)]
    first = writer.run([InferJob(h[:4]) for h in people])
    assert len(writer._population.people) == 10
    updated = writer.run([InferJob(h[4:], past=p) for h, p in zip(people, first)])
    # Ten people with two new pairs each are still the ten people: the population's shares stay whole people's.
    assert len(writer._population.people) == 10
    assert all(isinstance(p, Profile) and p.covers == 6 for p in updated)


def test_a_persons_own_text_stays_on_top_of_an_update(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    mine = Profile(profile="I like answers in French.", author="person")
    jobs = [InferJob(_user(long=i % 2 == 0, offset=10 * i), past=mine if i == 0 else None) for i in range(10)]
    profile = writer.run(jobs)[0]
    assert profile.profile.startswith("I like answers in French.\nThis person prefers replies that are longer")
    assert profile.evidence.preamble == "I like answers in French."


def year_judge(prompt: list[dict]) -> list[float]:
    """Knows which film is older from the year in its title, with an A bias and a small wobble."""
    first, second, question = _texts(prompt)
    year = lambda text: int(re.search(r"\((\d{4})\)", text).group(1))  # noqa: E731
    lean = 0.05 * (year(second) - year(first)) if question.startswith("item is older") else 0.0
    return [A_BIAS + lean / 2 + (sum(map(ord, prompt[-1]["content"])) % 17) / 40, -lean / 2]


def test_positive_only_items_are_compared_with_items_other_people_took(fake_backend):
    backend = fake_backend(option_fn=year_judge)
    writer = _writer(backend, reference=["Reference film (1990)"], threshold=0.5)
    people = [[Interaction(chosen=f"Film {10 * i + k} ({1940 + k if i % 2 == 0 else 2015 + k})") for k in range(4)]
              for i in range(10)]
    profiles = writer.run([InferJob(h) for h in people])
    assert "This person prefers items that are older, from an earlier time (4 of 4 choices)" in profiles[0].profile
    assert "prefers items that are newer and more recent" in profiles[1].profile
    assert "replies" not in profiles[0].profile
    keys = set(profiles[0].evidence.qualities)
    assert keys and all(k.startswith("items+positive:") for k in keys)
    asked = [p[-1]["content"] for kind, prompts in backend.calls for p in prompts]
    assert not any("## Request" in text for text in asked)  # no request context for a recommendation


def test_positive_only_alone_without_reference_items_says_what_to_do(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    with pytest.raises(InputError, match="reference items"):
        writer.run([InferJob([Interaction(chosen="x"), Interaction(chosen="y")])])


def test_too_few_people_and_no_table_says_how_to_calibrate(fake_backend):
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge))  # "shipped": there is no table for fake:test
    with pytest.raises(InputError, match="prefscribe calibrate"):
        writer.run([InferJob(_user(long=True))])


def test_the_default_writer_measures_a_user_of_the_default_model_alone(fake_backend):
    backend = fake_backend(option_fn=_noisy_judge)
    backend.info = BackendInfo(spec="embedded:1.5b+torch")  # the default model, whose table ships
    writer = writer_factory(DEFAULT_WRITER)(WriterParts(backend, backend, InferConfig(), None))
    assert isinstance(writer, MeasuredWriter) and writer.writer.startswith("measured(")
    [profile] = writer.run([InferJob(_user(long=True))])  # one user: compared with the shipped table
    assert isinstance(profile, Profile) and "(4 of 4 choices)" in profile.profile
    assert profile.evidence.qualities["replies:length"].n == 4


def test_the_default_writer_writes_free_text_for_clicks_it_has_nothing_to_compare_with(fake_backend):
    backend = fake_backend(option_fn=_noisy_judge, replies=["Reads science news."])
    backend.info = BackendInfo(spec="embedded:1.5b+torch")
    writer = writer_factory(DEFAULT_WRITER)(WriterParts(backend, backend, InferConfig(), None))
    clicks = _user(long=True, n=2) + [Interaction(chosen="Fusion experiment sets a record")]
    [profile] = writer.run([InferJob(clicks)])  # one user's click: no other people's items, no reference
    assert profile.profile == "Reads science news." and profile.evidence is None
    assert [kind for kind, _ in backend.calls] == ["generate"]
    [measured] = writer.run([InferJob(_user(long=True))])  # pairs alone are measured
    assert measured.evidence is not None and measured.prompt_version != profile.prompt_version


def test_the_default_writer_writes_free_text_where_it_cannot_compare(fake_backend):
    no_table = fake_backend(option_fn=_noisy_judge, replies=["Likes short answers."])  # no table for fake:test
    writer = writer_factory(DEFAULT_WRITER)(WriterParts(no_table, no_table, InferConfig(), None))
    assert not isinstance(writer, MeasuredWriter)
    [profile] = writer.run([InferJob(_user(long=False))])
    assert profile.profile == "Likes short answers." and no_table.calls[0][0] == "generate"
    # A table given makes a user comparable; several candidates are a free-text option; no letter
    # probabilities, nothing to measure with.
    given = MeasureConfig(calibration=_table_with_an_axis())
    table = WriterParts(no_table, no_table, InferConfig(), None, measure=given)
    assert isinstance(writer_factory(DEFAULT_WRITER)(table), MeasuredWriter)
    candidates = WriterParts(no_table, no_table, InferConfig(), None, candidates=2, measure=given)
    assert not isinstance(writer_factory(DEFAULT_WRITER)(candidates), MeasuredWriter)
    no_table.info = BackendInfo(spec="embedded:1.5b+torch", supports_logprobs=False)
    assert not isinstance(writer_factory(DEFAULT_WRITER)(WriterParts(no_table, no_table, InferConfig(), None)),
                          MeasuredWriter)


def test_an_unreadable_measurement_is_a_failure_not_a_guess(fake_backend):
    writer = _writer(fake_backend(option_fn=lambda prompt: [None, None]))
    results = writer.run([InferJob(_user(long=True, offset=10 * i)) for i in range(10)])
    assert all(r.error.startswith("unreadable measurements") for r in results)


def test_a_calibration_table_round_trips(tmp_path):
    table = Calibration(model="embedded:1.5b", vocabulary="measure+x", threshold=1.2,
                        stats={"replies:length": QualityStats(mean=0.1, std=0.5, within_std=0.2, comparisons=40,
                                                              people=10)})
    table.write(tmp_path / "t.json")
    assert read(tmp_path / "t.json") == table
    (tmp_path / "bad.json").write_text('{"model": 1}')
    with pytest.raises(InputError, match="not a calibration table"):
        read(tmp_path / "bad.json")


def test_the_default_model_ships_a_table_for_the_current_vocabulary():
    # Editing qualities.yaml or the scoring prompt changes the vocabulary version: the shipped table must then be
    # rebuilt (`prefscribe calibrate`, see measure/calibration/README.md), or single users cannot be measured.
    version = Vocabulary(get_prompts()).version
    table = shipped("embedded:1.5b+torch", version)  # the default model, on any engine
    assert table is not None, f"no shipped table for embedded:1.5b and vocabulary {version}"
    for kind in ("replies", "items", "items+positive"):
        assert table.covers(kind)
    assert all(s.within_std > 0 and s.people >= 2 for s in table.stats.values())
    assert table.source["split"] == "dev"


def test_the_shared_prefix_gives_the_scores_of_one_prompt_at_a_time(tiny_backend):
    """The grouped call reads the pair once and every question against its KV cache; it must score exactly
    what reading each prompt whole scores."""
    vocab = Vocabulary(get_prompts())
    comparison = Comparison("replies", "How do I undo a commit?", "git reset --soft HEAD~1", "Great question! Git...")
    grouped = score(CachedCalls(tiny_backend, None, vocab.version), vocab, [comparison])[0]
    for q in vocab.qualities["replies"][:4]:
        alone = []
        for first, second in ((comparison.mine, comparison.other), (comparison.other, comparison.mine)):
            [scores] = tiny_backend.option_logprobs([vocab.messages("replies", comparison.context, first, second, q)],
                                                    "Answer:", (" A", " B"))
            alone.append(scores.logprobs[0] - scores.logprobs[1])
        assert grouped.scores[q.id] == pytest.approx((alone[0] - alone[1]) / 2, abs=1e-4)


def test_measured_profiles_end_to_end_on_a_tiny_model(tiny_backend, tmp_path):
    cache = ResultCache(tmp_path / "cache.sqlite")
    writer = MeasuredWriter(tiny_backend, cache=cache, measure=MeasureConfig(calibration="run", threshold=0.0))
    people = [_user(long=i % 2 == 0, n=2, offset=10 * i) for i in range(8)]
    first = writer.run([InferJob(h) for h in people])
    assert all(isinstance(p, Profile) and p.profile.startswith("This person prefers replies that are") for p in first)
    assert all(math.isfinite(z) for p in first for z in [float(x.split()[-1]) for x in
                                                         p.reasoning.split(": ", 1)[1].split(", ")])
    assert len(cache) > 0
    again = writer.run([InferJob(h) for h in people])  # from the cache: the same profiles
    assert [p.profile for p in again] == [p.profile for p in first]


def test_population_separates_taste_from_the_judges_noise():
    """Two people who always differ on a quality and agree with themselves: the spread within a person is
    small, the spread of all scores large; a user is then measured in units of the former."""
    def scored(values):
        return [_scored({"length": v}) for v in values]

    table = population([scored([1.0, 1.2, 0.8, 1.0] * 3), scored([-1.0, -1.2, -0.8, -1.0] * 3)],
                       model="m", vocabulary="v")
    stats = table.get("replies", "length")
    assert stats.mean == pytest.approx(0.0)
    # each person: 12 scores, squares 3 * (0.2**2 + 0.2**2) around their own mean; 2 * 11 degrees of freedom
    assert stats.within_std == pytest.approx(math.sqrt(2 * 3 * 0.08 / 22))
    assert stats.std > 5 * stats.within_std
    assert (stats.comparisons, stats.people) == (24, 2)


def _scored(scores: dict[str, float]):
    from prefscribe.measure import Scored

    return Scored(Comparison("replies", "q?", "a", "b"), scores, [], 0)


def test_a_run_in_chunks_compares_each_chunk_with_everyone_measured_so_far(fake_backend):
    """An evaluation writes profiles a chunk at a time: a last chunk of fewer than MIN_PEOPLE users is compared
    with the people of the earlier chunks too, not refused."""
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    people = [_user(long=i % 2 == 0, offset=10 * i) for i in range(12)]
    first = writer.run([InferJob(h) for h in people[:8]])
    rest = writer.run([InferJob(h) for h in people[8:]])
    assert all(isinstance(p, Profile) for p in first + rest)
    assert "longer and more detailed" in rest[0].profile and "shorter and more concise" in rest[1].profile


def test_a_table_of_another_model_is_refused(fake_backend):
    table = Calibration(model="embedded:1.5b", vocabulary=Vocabulary(get_prompts()).version,
                        stats={"replies:length": QualityStats(mean=0.0, std=1.0, within_std=0.5, comparisons=40,
                                                              people=10)})
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge), measure=MeasureConfig(calibration=table))
    with pytest.raises(InputError, match="is for embedded:1.5b"):
        writer.run([InferJob(_user(long=True))])


# ------------------------------------------------------------------------------ an evaluation stopped and resumed
class JudgeDied(Exception):
    """The process ends here: what it wrote stays, nothing of its memory does."""


def _eval_backend(fake_backend, measure_fn, die_after: int | None = None):
    """Measures with `measure_fn`; as the evaluation's judge leans to the first item. With `die_after`, dies when
    it is asked about one of the last users' targets more than `die_after` times (each setting asks twice: both
    orders), i.e. when the evaluation reaches the last chunk of a setting."""
    seen: dict[str, int] = {}

    def option_fn(prompt: list[dict]) -> list[float]:
        if prompt[0]["content"] == MEASURING:
            return measure_fn(prompt)
        target = re.search(r"target \d+", prompt[-1]["content"]).group(0)
        seen[target] = seen.get(target, 0) + 1
        if die_after is not None and int(target.split()[1]) >= 8 and seen[target] > die_after:
            raise JudgeDied(target)
        return [math.log(0.7), math.log(0.3)]

    return fake_backend(option_fn=option_fn)


def _records(n: int, items: int = 4, short: int = 8):
    """`n` users of `items` interactions, but user `short` has one: their streaming profile is one step, taken
    before the others' two (so it is written between calls that a resumed run makes again)."""
    from prefscribe.schema import Target, UserRecord

    return [UserRecord(user_id=f"u{i:02d}", history=_user(long=i % 3 == 0, n=1 if i == short else items,
                                                          offset=10 * i),
                       target=Target(context=f"target {i}?", chosen=f"chosen target {i}", rejected=f"other {i}"))
            for i in range(n)]


def _evaluate(backend, out, records, settings, cache=None, threshold=None):
    from prefscribe.evaluate import EvalConfig, Evaluation
    from prefscribe.judge import Judge

    writer = MeasuredWriter(backend, cache=cache, measure=MeasureConfig(calibration="run", threshold=threshold))
    evaluation = Evaluation(writer, Judge(backend), EvalConfig(benchmark="psoups", settings=settings, out=out, chunk=8))
    evaluation.run(records)
    return _texts_of(out)


def _texts_of(out) -> dict[tuple[str, str], tuple[str, str]]:
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    texts = {(r["user_id"], r["setting"]): (r["preference"], r.get("reasoning")) for r in rows}
    assert len(texts) == len(rows)  # each (user, setting) judged once, the resumed run's included
    return texts


@pytest.mark.parametrize("die_after", [0, 2], ids=["stopped-in-full", "stopped-in-streaming"])
def test_a_resumed_evaluation_compares_with_the_people_an_uninterrupted_one_did(fake_backend, tmp_path, die_after):
    """12 users in chunks of 8: the last chunk of 4 is compared with the 8 before it. Stopped there (in `full`
    before its last chunk; in `streaming` after its last chunk was measured but before it was judged), a new
    process resumes the run folder: it must compare with the same people, and so write the same texts."""
    records = _records(12)
    settings = ["full", "streaming"]
    whole = _evaluate(_eval_backend(fake_backend, _noisy_judge), tmp_path / "whole", records, settings)
    with pytest.raises(JudgeDied):
        _evaluate(_eval_backend(fake_backend, _noisy_judge, die_after), tmp_path / "resumed", records, settings)
    stopped = _texts_of(tmp_path / "resumed")
    assert 0 < len(stopped) < len(whole)
    resumed = _evaluate(_eval_backend(fake_backend, _noisy_judge), tmp_path / "resumed", records, settings)
    assert resumed == whole
    assert "longer and more detailed" in whole[("u09", "full")][0]  # the texts compared state something


def test_a_resumed_evaluation_on_a_tiny_model_writes_the_uninterrupted_texts(tiny_backend, fake_backend, tmp_path):
    """The same on real scores: a tiny random model measures (its replies cached, as an evaluation's are), the
    scripted judge reads and dies before the last chunk of `streaming` is judged."""
    records = _records(10, items=2)
    settings = ["full", "streaming"]
    cache = ResultCache(tmp_path / "cache.sqlite")

    def run(out, judge):
        from prefscribe.evaluate import EvalConfig, Evaluation
        from prefscribe.judge import Judge

        writer = MeasuredWriter(tiny_backend, cache=cache, measure=MeasureConfig(calibration="run", threshold=0.0))
        Evaluation(writer, Judge(judge), EvalConfig(benchmark="psoups", settings=settings, out=out, chunk=8)
                   ).run(records)
        return _texts_of(out)

    whole = run(tmp_path / "whole", _eval_backend(fake_backend, None))
    with pytest.raises(JudgeDied):
        run(tmp_path / "resumed", _eval_backend(fake_backend, None, die_after=2))
    assert run(tmp_path / "resumed", _eval_backend(fake_backend, None)) == whole
    assert all(text.startswith("This person prefers") for text, _ in whole.values())


def test_the_kept_people_survive_a_line_cut_short_and_other_writers_lines(fake_backend, tmp_path):
    path = tmp_path / "measured.jsonl"
    path.write_text('{"writer": "measured(another)@fake:test", "person": "p", "scores": []}\n', encoding="utf-8")
    first = _writer(fake_backend(option_fn=_noisy_judge))
    first.keep_state(tmp_path)
    first.run([InferJob(_user(long=i % 2 == 0, offset=10 * i)) for i in range(8)])
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"writer": "measured(z=ta')  # a stop in the middle of a line
    for offset in (500, 600):  # two later processes, each with one person: compared with the 8 kept ones
        later = _writer(fake_backend(option_fn=_noisy_judge))
        later.keep_state(tmp_path)
        [profile] = later.run([InferJob(_user(long=True, offset=offset))])
        assert isinstance(profile, Profile) and "longer and more detailed" in profile.profile
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]  # whole lines only
    assert [line["people"] for line in lines if "call" in line] == [8, 9, 10]
    assert sum("person" in line for line in lines) == 1 + 10


def test_a_kept_file_broken_before_its_last_line_is_refused(fake_backend, tmp_path):
    (tmp_path / "measured.jsonl").write_text("not json\n{}\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1 is not a measured person"):
        _writer(fake_backend(option_fn=_noisy_judge)).keep_state(tmp_path)


def _people(offsets: list[float], comparisons: int = 6, seed: int = 0) -> list[list[dict[str, float]]]:
    """Scores on four qualities: `a` and `b` move together with each person's taste (offset), `c` and `d`
    are the judge's noise alone."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [[{"a": t + rng.normal(0, 0.5), "b": 0.8 * t + rng.normal(0, 0.5), "c": rng.normal(0, 0.5),
              "d": rng.normal(0, 0.5)} for _ in range(comparisons)] for t in offsets]


def test_axes_are_where_people_differ_beyond_the_judges_noise():
    from prefscribe.measure import fit_axes, position

    people = _people([0.6 if i % 2 else -0.6 for i in range(24)])
    [axis, *_] = fit_axes(people)
    assert axis.ratio > axis.null
    assert sorted(axis.loadings, key=lambda q: -abs(axis.loadings[q]))[:2] == ["a", "b"]
    centre = {q: sum(s[q] for p in people for s in p) / sum(map(len, people)) for q in "abcd"}
    for i, person in enumerate(people):
        means = {q: sum(s[q] for s in person) / len(person) for q in "abcd"}
        z = position(axis, means, centre, len(person))
        assert (z > 0) == (i % 2 == 1)  # the axis puts every person on their own side
    # No taste, only noise: nothing to state; too few people: no axes at all.
    assert fit_axes(_people([0.0] * 24, seed=1)) == []
    assert fit_axes(people[:8]) == []


def _judge_with_noise(prompt: list[dict]) -> list[float]:
    """The length judge plus the noise of a real one: every answer of every prompt wobbles (seeded by the
    prompt), so each quality varies within a person as well as between."""
    import hashlib

    first, second = length_judge(prompt)
    wobble = int(hashlib.sha256(prompt[-1]["content"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF - 0.5
    return [first + 2 * wobble, second]


def test_a_population_large_enough_states_its_axis_for_each_side(fake_backend):
    writer = _writer(fake_backend(option_fn=_judge_with_noise))
    people = [_user(long=i % 2 == 0, offset=10 * i) for i in range(20)]
    profiles = writer.run([InferJob(h) for h in people])
    for i, profile in enumerate(profiles):
        assert ("longer and more detailed (4 of 4 choices)" in profile.profile) == (i % 2 == 0)
        assert ("shorter and more concise (4 of 4 choices)" in profile.profile) == (i % 2 == 1)
        assert "replies:axis1" in profile.reasoning


def test_an_evaluation_measures_every_user_before_writing_any_profile(fake_backend, tmp_path):
    """The first chunk of an evaluation (8 users) is compared with all its 20 users, as the last is: its
    profiles are the ones one call over all of them writes, and they state the axis the 20 make."""
    records = _records(20)
    together = _writer(_eval_backend(fake_backend, _judge_with_noise)).run([InferJob(r.history) for r in records])
    texts = _evaluate(_eval_backend(fake_backend, _judge_with_noise), tmp_path / "run", records, ["full"])
    assert [texts[(r.user_id, "full")][0] for r in records] == [p.profile for p in together]
    assert all("replies:axis1" in texts[(r.user_id, "full")][1] for r in records)


def _films(likes: str | None, n: int = 6, offset: int = 0) -> list[Interaction]:
    """A user who took the film of genre `likes` (or, with None, either at random) over one of another genre;
    every film is also a Drama, which everyone takes and so sets nobody apart."""
    out = []
    for k in range(n):
        genres = ["Sci-Fi", "Comedy"] if (k + offset) % 2 else ["Comedy", "Sci-Fi"]
        chosen_genre = likes or genres[0]
        rejected_genre = next(g for g in genres if g != chosen_genre)
        out.append(Interaction(chosen=f"Film {offset}-{k} (1999) — {chosen_genre}, Drama",
                               rejected=f"Film {offset}-{k}b (1999) — {rejected_genre}",
                               meta={"tags": [chosen_genre, "Drama", "1990s"], "rejected_tags": [rejected_genre, "1990s"]}))
    return out


def test_tags_state_the_genres_a_user_takes_more_often_than_other_people(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    people = [_films("Sci-Fi" if i < 3 else "Comedy" if i < 6 else None, offset=i) for i in range(12)]
    profiles = writer.run([InferJob(h) for h in people])
    assert re.search(r"\blikes? Sci-Fi \(6 of 6 choices\)", profiles[0].profile)
    assert re.search(r"\bavoids? Comedy \(6 of 6 choices\)", profiles[0].profile)
    assert re.search(r"\blikes? Comedy", profiles[3].profile) and "Sci-Fi" in profiles[3].profile
    for profile in profiles:
        assert "Drama" not in profile.profile and "1990s" not in profile.profile  # everyone's, or nobody's choice
        assert profile.evidence.qualities["items+tags:Drama"].n == 6
    assert "Sci-Fi" not in profiles[9].profile and "Comedy" not in profiles[9].profile


def test_an_update_adds_tag_counts_and_reads_only_the_new_pairs(fake_backend):
    backend = fake_backend(option_fn=_noisy_judge)
    writer = _writer(backend)
    others = [InferJob(_films("Comedy" if i % 2 else None, offset=i)) for i in range(1, 11)]
    history = _films("Sci-Fi", n=8, offset=100)
    whole = writer.run(others + [InferJob(history)])[-1]
    first = writer.run(others + [InferJob(history[:5])])[-1]
    backend.calls.clear()
    updated = writer.run([InferJob(history[5:], past=first)])[0]
    asked = [p[-1]["content"] for kind, prompts in backend.calls for p in prompts]
    assert asked and all(re.search(r"Film 100-[567]", text) for text in asked)
    assert updated.evidence.qualities["items+tags:Sci-Fi"].n == 8
    assert updated.evidence.qualities["items+tags:Sci-Fi"].total == 8
    assert re.search(r"\blikes? Sci-Fi \(8 of 8 choices\)", updated.profile)
    assert re.search(r"\blikes? Sci-Fi \(8 of 8 choices\)", whole.profile)


def test_positive_only_tags_are_shares_of_the_users_picks_against_other_peoples(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    people = [[Interaction(chosen=f"News {i}-{k}", meta={"tags": ["sports" if i < 6 else f"topic{k % 4}"]})
               for k in range(8)] for i in range(12)]
    profiles = writer.run([InferJob(h) for h in people])
    assert re.search(r"\blikes? sports \(8 of 8 choices\)", profiles[0].profile), profiles[0].profile
    evidence = profiles[0].evidence.qualities
    assert evidence["items+positive+shares:*"].n == 8 and evidence["items+positive+shares:sports"].n == 8
    assert "items+positive+shares:topic1" not in evidence  # a tag is counted where the user picked it
    # Those who read topics, never sports, pass over what half the people read only.
    assert not re.search(r"\blikes? sports \(", profiles[-1].profile)  # a quality may still say "sports"
    assert re.search(r"\bavoids? sports \(8 of 8 choices\)", profiles[-1].profile), profiles[-1].profile


def _picks(tags_of_pick, n: int, person: int) -> list[Interaction]:
    return [Interaction(chosen=f"Headline {person}-{k}", meta={"tags": tags_of_pick(k)}) for k in range(n)]


def test_a_share_needs_two_picks_to_be_liked_and_updates_add_picks(fake_backend):
    """Nobody else picks "opera": one pick of it is a large share of nothing; a second pick, in an update
    that reads only the new picks, makes it a liking, with the counts of all the user's picks."""
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge),
                            measure=MeasureConfig(calibration="shipped", ask_tagged_items=False))
    others = [InferJob(_picks(lambda k: ["news" if k % 2 else "sports"], 10, person=i)) for i in range(20)]
    first = _picks(lambda k: ["opera"] if k == 0 else ["news" if k % 2 else "sports"], 6, person=100)
    once = writer.run(others + [InferJob(first)])[-1]
    assert "opera" not in once.profile
    more = [Interaction(chosen="Headline 100-new", meta={"tags": ["opera"]})]
    twice = writer.run([InferJob(more, past=once)])[0]
    assert twice.evidence.qualities["items+positive+shares:*"].n == 7
    assert re.search(r"\blikes? opera \(2 of 7 choices\)", twice.profile), twice.profile


def test_tags_that_are_not_a_list_of_strings_are_refused(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    bad = [Interaction(chosen="Film (1999)", rejected="Other (1990)", meta={"tags": "Sci-Fi"})]
    with pytest.raises(InputError, match="meta.tags must be a list of strings"):
        writer.run([InferJob(bad)] + [InferJob(_films(None, offset=i)) for i in range(9)])


def test_tagged_items_can_be_measured_by_their_tags_alone(fake_backend):
    backend = fake_backend(option_fn=_noisy_judge)
    writer = MeasuredWriter(backend, measure=MeasureConfig(calibration="shipped", ask_tagged_items=False))
    people = [_films("Sci-Fi" if i < 3 else None, n=8, offset=i) for i in range(12)]
    profiles = writer.run([InferJob(h) for h in people])
    assert not backend.calls  # no model call, and no calibration table needed
    assert re.search(r"\blikes? Sci-Fi \(8 of 8 choices\)", profiles[0].profile)
    assert "Sci-Fi" not in profiles[5].profile
    assert all(not name.startswith("items:") for name in profiles[0].evidence.qualities)


def test_positive_only_items_are_compared_with_items_of_their_own_domain(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    films = [Interaction(chosen=f"Film {k} (199{k})", domain="movies") for k in range(3)]
    news = [Interaction(chosen=f"Headline {k}", domain="news") for k in range(3)]
    plain = [Interaction(chosen="An item with no domain")]
    another_film = Interaction(chosen="Film 9 (1999)", domain="movies")
    first, second, third = writer.comparisons([InferJob(films), InferJob(news + [another_film]), InferJob(plain)])
    # A film is compared with another person's film; nobody else took headlines, so a headline is compared
    # with any item other people took, as is an item with no domain.
    assert [c.other for c in first] == ["Film 9 (1999)"] * 3
    assert second[3].other.startswith("Film ") and second[3].other != "Film 9 (1999)"
    assert not any(c.other.startswith("Headline") for c in second[:3])
    assert third[0].other.startswith(("Film", "Headline"))


def _table_with_an_axis() -> Calibration:
    """Items whose people differ mostly along one axis (celebrity news against politics), a quality beside it
    (science), and another the axis loads on (sports)."""
    stats = {f"items:{q}": QualityStats(mean=0.0, std=0.2, within_std=0.1, comparisons=100, people=20)
             for q in ("celebrity", "politics", "sports", "science")}
    axis = Axis(weights={"celebrity": 10.0, "politics": -10.0, "sports": 10.0},
                loadings={"celebrity": 0.8, "politics": -0.6, "sports": 0.5}, noise=3.0, ratio=2.0, null=1.0)
    return Calibration(model="fake:test", vocabulary=Vocabulary(get_prompts()).version, stats=stats,
                       axes={"items": [axis]})


def _evidence(means: dict[str, float], n: int = 4) -> Evidence:
    entries = {f"items:{q}": QualityEvidence(n=n, total=m * n, above=n if m > 0 else 0)
               for q, m in means.items()}
    return Evidence(vocabulary="v", calibration="t", qualities=entries)


def test_an_axis_is_named_only_by_qualities_the_users_own_choices_lean_to(fake_backend):
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge))
    # Along the axis by celebrity news, though a little more political and less sporty than other people.
    kept, ranked = writer._kept(_evidence({"celebrity": 0.2, "politics": 0.05, "sports": -0.05, "science": 0.0}),
                                _table_with_an_axis())
    assert ranked[0][0] == "items:axis1" and ranked[0][1] > 1.0
    assert [k.pole for k in kept] == ["more about celebrities, entertainment or lifestyle"]


def test_a_quality_off_the_populations_axes_is_stated_beside_them(fake_backend):
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge))
    # Nowhere on the axis; far above other people on science (z = 0.2 / (0.1 / 2) = 4).
    kept, _ = writer._kept(_evidence({"celebrity": 0.0, "politics": 0.0, "sports": 0.0, "science": 0.2}),
                           _table_with_an_axis())
    assert [(k.pole, k.agree, k.n) for k in kept] == [("more about science, technology or health", 4, 4)]
    # Below the bar for one quality among many (z = 2 < QUALITY_THRESHOLD): nothing is stated.
    kept, _ = writer._kept(_evidence({"celebrity": 0.0, "politics": 0.0, "sports": 0.0, "science": 0.1}),
                           _table_with_an_axis())
    assert kept == []


def test_an_axis_comes_before_a_single_quality_when_room_is_short(fake_backend):
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge), measure=MeasureConfig(max_qualities=1))
    # On the axis by being less political (axis z about 1.2), and far out on science alone (z = 6).
    kept, _ = writer._kept(_evidence({"celebrity": 0.0, "politics": -0.1, "sports": 0.0, "science": 0.3}),
                           _table_with_an_axis())
    assert [k.pole for k in kept] == ["less political"]


def test_a_measured_profile_reads_as_sentences_with_each_findings_count():
    vocabulary = Vocabulary(get_prompts())
    kept = [Kept(nouns="replies", pole="shorter", short="shorter", agree=4, n=4, z=2.0),
            Kept(nouns="items", pole="older", short="older", agree=5, n=6, z=1.5),
            Kept(nouns="replies", pole="more casual", short="more casual", agree=3, n=4, z=-1.2)]
    tags = [KeptTag(tag="Sci-Fi", likes=True, took=5, n=5, others=40, z=2.5),
            KeptTag(tag="Comedy", likes=False, took=1, n=4, others=50, z=-2.1),
            KeptTag(tag="Drama", likes=True, took=3, n=3, others=None, z=2.0)]
    assert vocabulary.render(kept, tags, measured=9) == (
        "This person prefers items that are older (5 of 6 choices). "
        "They prefer replies that are shorter (4 of 4 choices) and more casual (3 of 4 choices). "
        "They like Sci-Fi (5 of 5 choices) and Drama (3 of 3 choices). They avoid Comedy (3 of 4 choices).")
    assert vocabulary.render([], tags[1:2], measured=9) == "This person avoids Comedy (3 of 4 choices)."
    nothing = vocabulary.render([], [], measured=9)
    assert nothing == "No preference stands out from other people's yet (9 choices measured)."


def test_rewording_profiles_keeps_the_measurements_and_tables(tmp_path):
    import shutil

    from prefscribe.prompts.templates import TEMPLATES

    shutil.copytree(TEMPLATES / "v1", tmp_path / "p")
    built_in = Vocabulary(get_prompts())
    text = tmp_path / "p" / "measured_profile.j2"
    text.write_text(text.read_text(encoding="utf-8").replace("This person", "The user"), encoding="utf-8")
    reworded = Vocabulary(get_prompts(tmp_path / "p"))
    assert reworded.version == built_in.version  # same questions: cached scores and tables still apply
    assert reworded.text_version != built_in.text_version  # profiles say which wording wrote them
    (tmp_path / "p" / "qualities.yaml").write_text(
        (TEMPLATES / "v1" / "qualities.yaml").read_text(encoding="utf-8").replace("version: 1", "version: 2"),
        encoding="utf-8")
    assert Vocabulary(get_prompts(tmp_path / "p")).version != built_in.version


def test_a_profile_measured_with_another_vocabulary_is_measured_again_not_kept_as_text(fake_backend):
    writer = _writer(fake_backend(option_fn=_noisy_judge))
    jobs = [InferJob(_user(long=i % 2 == 0, offset=10 * i)) for i in range(10)]
    first = writer.run(jobs)[0]
    old = first.model_copy(update={"evidence": first.evidence.model_copy(update={"vocabulary": "measure+old",
                                                                                   "preamble": "Mine."})})
    again = writer.run([InferJob(_user(long=True, offset=900), past=old)] + jobs[1:])[0]
    assert again.profile.startswith("Mine.\nThis person prefers replies that are longer")
    assert again.profile.count("prefers replies that are longer") == 1  # the old lines are not carried as text
    assert again.evidence.qualities["replies:length"].n == 4  # only the new pairs' counts


def fuller_judge(prompt: list[dict]) -> list[float]:
    """Calls the longer text "more" of every quality, as small judges do; on humour a joke counts too, but less
    than length does (so raw humour scores call the long serious reply the funnier); a wobble for spread."""
    first, second, question = _texts(prompt)
    lean = 0.05 * (len(first) - len(second))
    if question.startswith("reply is funnier"):
        lean += 1.5 * (("Ha!" in first) - ("Ha!" in second))
    wobble = (zlib.crc32(prompt[-1]["content"].encode()) % 101) / 50  # differs between the two orders
    return [A_BIAS + lean / 2 + wobble, -lean / 2]


def _joker(jokes: bool, offset: int) -> list[Interaction]:
    joke, plain = "Ha! Yes, like a cat on a keyboard.", "Yes. The answer is yes, for the three reasons below, in order."
    return [Interaction(context=f"question {offset + i}?", chosen=(joke if jokes else plain) + f" ({i})",
                        rejected=(plain if jokes else joke) + f" ({i})") for i in range(4)]


def test_centred_scores_find_the_quality_a_fuller_reply_hides(fake_backend):
    people = [_joker(jokes=i % 2 == 0, offset=10 * i) for i in range(20)]
    raw = _writer(fake_backend(option_fn=fuller_judge)).run([InferJob(h) for h in people])
    writer = _writer(fake_backend(option_fn=fuller_judge), centred=True)
    profiles = writer.run([InferJob(h) for h in people])
    # Raw, every quality moves with length: the judge's humour answers say the jokers chose the less funny reply.
    assert not any("funnier" in p.profile for p in raw)
    assert all("funnier and more playful (4 of 4 choices)" in p.profile for p in profiles[::2])
    assert not any("funnier" in p.profile for p in profiles[1::2])
    assert all(p.evidence.vocabulary == writer.scale and writer.scale.endswith("+centred") for p in profiles)
    assert "centred" in writer.writer and "centred" not in _writer(fake_backend(option_fn=fuller_judge)).writer


def _imax(took: int, n: int, offset: int) -> list[Interaction]:
    """A user who took the IMAX film of a pair in `took` of `n` choices."""
    out = []
    for k in range(n):
        imax, plain = f"Film {offset}-{k} (1999) IMAX", f"Film {offset}-{k}b (1999)"
        chosen, rejected = (imax, plain) if k < took else (plain, imax)
        out.append(Interaction(chosen=chosen, rejected=rejected,
                               meta={"tags": ["IMAX"] if k < took else ["2D"],
                                     "rejected_tags": ["2D"] if k < took else ["IMAX"]}))
    return out


def test_a_tag_the_users_own_counts_contradict_is_not_stated(fake_backend):
    """Other people take IMAX in 9 of 10 choices: a user who took it in 2 of 4 is far below them, yet "avoids
    IMAX (2 of 4 choices)" would tell a reader the opposite of what they see; 1 of 4 is an avoidance."""
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge),
                            measure=MeasureConfig(calibration="shipped", ask_tagged_items=False))
    others = [InferJob(_imax(9, 10, offset=i)) for i in range(10)]
    users = others + [InferJob(_imax(2, 4, offset=100)), InferJob(_imax(1, 4, offset=101))]
    half, once = writer.run(users)[-2:]
    assert half.evidence.qualities["items+tags:IMAX"].n == 4
    assert "IMAX" not in half.profile and "2D" not in half.profile
    assert re.search(r"\bavoids? IMAX \(3 of 4 choices\)", once.profile), once.profile


def test_only_tagged_items_skip_the_reference_when_measured_by_tags_alone(fake_backend):
    """Under --tags-only an item pick is counted by its tags with no reference; a reply the model must still read
    (tags are not counted for replies) is compared with another person's reply, never with nothing."""
    writer = MeasuredWriter(fake_backend(option_fn=_noisy_judge),
                            measure=MeasureConfig(calibration="shipped", ask_tagged_items=False))
    item = [Interaction(chosen="Headline 1", meta={"tags": ["sports"]})]
    reply = [Interaction(context="How do I boil an egg?", chosen="Six minutes.", meta={"tags": ["short"]})]
    other = [Interaction(context="How do I boil an egg?", chosen="Eggs are versatile...", meta={"tags": ["long"]})]
    items, replies, _ = writer.comparisons([InferJob(item), InferJob(reply), InferJob(other)])
    assert items[0].other == "" and items[0].tag_scores == {"*": 1.0, "sports": 1.0}
    assert replies[0].other == "Eggs are versatile..."
