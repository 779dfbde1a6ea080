"""`prefscribe infer`, `choose`, `respond`: write and use profiles from the command line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..cache import ResultCache
from ..errors import InputError
from ..evaluate.writers import WriterParts, writer_factory
from ..formats import profile_record
from ..infer import InferConfig
from ..judge import RESPOND_SAMPLING, ChoiceTask, Judge, Method, Orders
from ..llm import DEFAULT_SPEC, load_backend
from ..measure import MeasureConfig
from ..measure import read as read_calibration
from ..prompts import Style, get_prompts
from ..schema import InferenceFailure, profile_from_text, read_history, read_profile
from .options import (
    DEFAULT_WRITER,
    CandidatesOpt,
    JsonOpt,
    ModelOpt,
    NoCacheOpt,
    PromptsOpt,
    TagsOnlyOpt,
    WriterOpt,
    check_choice,
    emit_json,
    errors_exit,
    print_error,
    progress_bar,
)

ProfileOpt = Annotated[Path | None, typer.Option(help="The user's profile (JSON or plain text); - reads stdin.")]
ProfileTextOpt = Annotated[str | None, typer.Option(help="The user's profile as text on the command line.")]


def infer(
    history: Annotated[Path, typer.Argument(help="JSONL file: one {context, chosen, rejected} per line.")],
    past: Annotated[Path | None, typer.Option(help="A profile to update (JSON from --json, or plain text); "
                                              "- reads stdin.")] = None,
    segments: Annotated[int, typer.Option(help="Stream over this many consecutive segments.")] = 1,
    model: ModelOpt = DEFAULT_SPEC,
    style: Annotated[str | None, typer.Option(help="reasoning (think, then summarize) or direct; "
                                              "default: by model.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Token limit of each reply.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    candidates: CandidatesOpt = 1,
    validator: Annotated[str | None, typer.Option(help="Model that judges the candidates (default: --model).")
                         ] = None,
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
    writer: WriterOpt = DEFAULT_WRITER,
    reference: Annotated[Path | None, typer.Option(help="measured writer: a JSONL history of items other people "
                                                   "took, compared with a positive-only history's items.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="measured writer: a table from `prefscribe calibrate` "
                                                     "(default: the package's, if it ships one).")] = None,
    tags_only: TagsOnlyOpt = False,
) -> None:
    """Write a preference profile from a history, or update one (--past) with new interactions."""
    with errors_exit():
        interactions = read_history(history)
        past_profile = read_profile(past) if past else None
        if style is not None:
            check_choice("style", style, Style)
        config = InferConfig(style=style, max_new_tokens=max_new_tokens, seed=seed, prompts=get_prompts(prompts))
        cache = None if no_cache else ResultCache()
        measure = MeasureConfig(reference=[i.chosen for i in read_history(reference)] if reference else (),
                                calibration=read_calibration(calibration) if calibration else "shipped", seed=seed,
                                ask_tagged_items=not tags_only)
        backend = load_backend(model)
        inferrer = writer_factory(writer)(WriterParts(backend, backend, config, cache, candidates,
                                               load_backend(validator) if validator else None, measure))
        with progress_bar(f"profile ({inferrer.backend.info.spec})", segments) as advance:
            steps = inferrer.stream_many([interactions], segments, [past_profile], progress=advance)[0]
        final = steps[-1]
        if isinstance(final, InferenceFailure):
            if as_json:
                emit_json({"error": final.error, "raw": final.raw, "model": final.model,
                           "prompt_version": final.prompt_version})
            print_error("inference failed", str(final.error))
            raise typer.Exit(1)
        if as_json:
            out = profile_record(final)
            out["usage"] = {"prompt_tokens": sum(s.usage.prompt_tokens for s in steps),
                            "completion_tokens": sum(s.usage.completion_tokens for s in steps)}
            emit_json(out)
        else:
            typer.echo(final.profile)


def _load_preference(profile: Path | None, profile_text: str | None) -> str | None:
    if profile is not None and profile_text is not None:
        raise InputError("give the profile as a file (--profile) or as text (--profile-text), not both",
                         field="profile")
    if profile_text is not None:
        return profile_from_text(profile_text, "--profile-text").profile
    return read_profile(profile).profile if profile else None


def choose(
    a: Annotated[str, typer.Option("--a", help="The first item.")],
    b: Annotated[str, typer.Option("--b", help="The second item.")],
    profile: ProfileOpt = None,
    profile_text: ProfileTextOpt = None,
    context: Annotated[str | None, typer.Option(help="The query or situation; none for recommendations.")] = None,
    model: ModelOpt = DEFAULT_SPEC,
    method: Annotated[str, typer.Option(help="logprobs, generation, likelihood or contrast.")] = "logprobs",
    orders: Annotated[str, typer.Option(help="both (debiased), ab, ba or random.")] = "both",
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Which of two items this user prefers."""
    with errors_exit():
        check_choice("method", method, Method)
        check_choice("orders", orders, Orders)
        task = ChoiceTask(a=a, b=b, context=context, preference=_load_preference(profile, profile_text))
        judge = Judge(load_backend(model), method=method, orders=orders, prompts=get_prompts(prompts),
                      cache=None if no_cache else ResultCache())
        result = judge.choose(task)
        if as_json:
            emit_json(result.model_dump(include={"choice", "p_a", "p_b", "orders", "method", "error"}))
        elif result.choice is None:
            print_error("no choice", str(result.error))
        else:
            item = a if result.choice == "a" else b
            typer.echo(f"{result.choice}  (p_a={result.p_a:.3f}, p_b={result.p_b:.3f})  {item}")
        if result.choice is None:
            raise typer.Exit(1)


def respond(
    context: Annotated[str, typer.Option(help="The user's message.")],
    profile: ProfileOpt = None,
    profile_text: ProfileTextOpt = None,
    model: ModelOpt = DEFAULT_SPEC,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Token limit of the reply.")] = RESPOND_SAMPLING.max_new_tokens,
    no_cache: NoCacheOpt = False,
) -> None:
    """A response written for the user the profile describes."""
    with errors_exit():
        preference = _load_preference(profile, profile_text)  # bad input fails before the model loads
        judge = Judge(load_backend(model), cache=None if no_cache else ResultCache())
        completion = judge.respond(preference, context, replace(RESPOND_SAMPLING, max_new_tokens=max_new_tokens))
        if completion.finish_reason == "error":
            print_error("generation failed", str(completion.error))
            raise typer.Exit(1)
        typer.echo(completion.text)
