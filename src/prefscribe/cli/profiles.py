"""`prefscribe infer`, `choose`, `respond`: write and use profiles from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cache import ResultCache
from ..infer import InferConfig, Inferrer
from ..judge import ChoiceTask, Judge
from ..llm import DEFAULT_SPEC, load_backend
from ..llm.base import Sampling
from ..prompts import get_prompts
from ..schema import InferenceFailure, Profile, read_history, read_profile
from .options import JsonOpt, ModelOpt, NoCacheOpt, PromptsOpt, console, emit_json, errors_exit, progress_bar


def _inferrer(model: str, style: str | None, max_new_tokens: int | None, seed: int, no_cache: bool,
              prompts: str | None) -> Inferrer:
    backend = load_backend(model)
    probe = Inferrer(backend, InferConfig(style=style))  # resolves the style's default sampling
    sampling = probe.sampling
    if max_new_tokens or seed:
        sampling = Sampling(**{**sampling.__dict__, "seed": seed,
                               **({"max_new_tokens": max_new_tokens} if max_new_tokens else {})})
    config = InferConfig(style=style, sampling=sampling, prompts=get_prompts(prompts))
    return Inferrer(backend, config, None if no_cache else ResultCache())


def _profile_json(result: Profile) -> dict:
    return result.model_dump(include={"profile", "reasoning", "model", "prompt_version", "covers", "usage",
                                      "parent", "author"})


def infer(
    history: Annotated[Path, typer.Argument(help="JSONL file: one {context, chosen, rejected} per line.")],
    past: Annotated[Path | None, typer.Option(help="A profile to update (JSON from --json, or plain text).")] = None,
    segments: Annotated[int, typer.Option(help="Stream over this many consecutive segments.")] = 1,
    model: ModelOpt = DEFAULT_SPEC,
    style: Annotated[str | None, typer.Option(help="reasoning (think, then summarize) or direct; "
                                              "default: by model.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Token limit of each reply.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Write a preference profile from a history, or update one (--past) with new interactions."""
    with errors_exit():
        interactions = read_history(history)
        past_profile = read_profile(past) if past else None
        if style not in (None, "reasoning", "direct"):
            raise typer.BadParameter("--style must be reasoning or direct")
        inferrer = _inferrer(model, style, max_new_tokens, seed, no_cache, prompts)
        with progress_bar(f"profile ({inferrer.backend.info.spec})", segments) as advance:
            steps = inferrer.stream_many([interactions], segments, [past_profile], progress=advance)[0]
        final = steps[-1]
        if isinstance(final, InferenceFailure):
            if as_json:
                emit_json({"error": final.error, "raw": final.raw, "model": final.model,
                           "prompt_version": final.prompt_version})
            console.print(f"[bold red]inference failed:[/] {final.error}")
            raise typer.Exit(1)
        if as_json:
            out = _profile_json(final)
            out["usage"] = {"prompt_tokens": sum(s.usage.prompt_tokens for s in steps),
                            "completion_tokens": sum(s.usage.completion_tokens for s in steps)}
            emit_json(out)
        else:
            typer.echo(final.profile)


def _load_preference(profile: Path | None) -> str | None:
    return read_profile(profile).profile if profile else None


def choose(
    a: Annotated[str, typer.Option("--a", help="The first item.")],
    b: Annotated[str, typer.Option("--b", help="The second item.")],
    profile: Annotated[Path | None, typer.Option(help="The user's profile (JSON or plain text).")] = None,
    context: Annotated[str | None, typer.Option(help="The query or situation; none for recommendations.")] = None,
    model: ModelOpt = DEFAULT_SPEC,
    method: Annotated[str, typer.Option(help="logprobs, generation or likelihood.")] = "logprobs",
    orders: Annotated[str, typer.Option(help="both (debiased), ab, ba or random.")] = "both",
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Which of two items this user prefers."""
    with errors_exit():
        if method not in ("logprobs", "generation", "likelihood"):
            raise typer.BadParameter("--method must be logprobs, generation or likelihood")
        if orders not in ("both", "ab", "ba", "random"):
            raise typer.BadParameter("--orders must be both, ab, ba or random")
        judge = Judge(load_backend(model), method=method, orders=orders, prompts=get_prompts(prompts),
                      cache=None if no_cache else ResultCache())
        result = judge.choose(ChoiceTask(a=a, b=b, context=context, preference=_load_preference(profile)))
        if as_json:
            emit_json(result.model_dump(include={"choice", "p_a", "p_b", "orders", "method", "error"}))
        elif result.choice is None:
            console.print(f"[bold red]no choice:[/] {result.error}")
        else:
            item = a if result.choice == "a" else b
            typer.echo(f"{result.choice}  (p_a={result.p_a:.3f}, p_b={result.p_b:.3f})  {item}")
        if result.choice is None:
            raise typer.Exit(1)


def respond(
    context: Annotated[str, typer.Option(help="The user's message.")],
    profile: Annotated[Path | None, typer.Option(help="The user's profile (JSON or plain text).")] = None,
    model: ModelOpt = DEFAULT_SPEC,
    max_new_tokens: Annotated[int, typer.Option(help="Token limit of the reply.")] = 512,
    no_cache: NoCacheOpt = False,
) -> None:
    """A response written for the user the profile describes."""
    with errors_exit():
        judge = Judge(load_backend(model), cache=None if no_cache else ResultCache())
        completion = judge.respond(_load_preference(profile), context, Sampling(max_new_tokens=max_new_tokens,
                                                                                  temperature=0.7))
        if completion.finish_reason == "error":
            console.print(f"[bold red]generation failed:[/] {completion.error}")
            raise typer.Exit(1)
        typer.echo(completion.text)
