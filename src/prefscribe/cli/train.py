"""`prefscribe train sft | direct | rl | plot`: the training stages from a YAML config plus KEY=VALUE overrides.
Fields: prefscribe/train/config.py (and the commented presets in configs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import console, errors_exit

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Train: SFT, the direct predictor, streaming GRPO (needs the train extra).")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (see configs/*.yaml).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="Override a field: KEY=VALUE, dotted keys nest (lora.enabled=true); repeatable.")]


def _run(stage: str, config: Path | None, overrides: list[str] | None) -> None:
    from ..train import load_config, run

    with errors_exit():
        settings = load_config(stage, config, overrides or [])  # type: ignore[arg-type]
        console.print(f"[bold]train {stage}[/]: {settings.model} -> {settings.output_dir}", highlight=False)
        final = run(stage, settings)
    if final is not None:
        console.print(f"final model: {final}  (use it as hf:{final})", highlight=False)


@app.command()
def sft(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Supervised fine-tuning on `prefscribe synth` chat records (loss on the completion only)."""
    _run("sft", config, set_)


@app.command()
def direct(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Fine-tune the direct predictor (raw history -> {"selection": "Item A|B"}): pruning's --strong scorer."""
    _run("direct", config, set_)


@app.command()
def rl(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Streaming GRPO with the cumulative reward on RL records from curriculum pruning."""
    _run("rl", config, set_)


@app.command()
def plot(
    log: Annotated[Path, typer.Argument(help="A training log: <output_dir>/train_log.jsonl.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: training.png beside the log).")] = None,
) -> None:
    """Plot a training log: rewards per stage, response lengths, format failures, clip fraction, losses."""
    from ..train.logs import plot_training

    with errors_exit():
        path = plot_training(log, out)
    console.print(f"wrote {path}", highlight=False)
