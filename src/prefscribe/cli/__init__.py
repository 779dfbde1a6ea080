"""The `prefscribe` command line: one module per command group, each parsing its input, calling the library
and printing (rich for people, --json for machines). Owns no logic of its own: a bad input is the library's
InputError, printed as one `error:` line with exit code 2 (`options.errors_exit`)."""

from __future__ import annotations

import sys

import typer

from . import batch as _batch
from . import demo as _demo
from . import eval as _eval
from . import measure as _measure
from . import personaset as _personaset
from . import portability as _portability
from . import mcp as _mcp
from . import profiles as _profiles
from . import service as _service
from . import synth as _synth
from . import train as _train
from .extras import missing_module_message

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Readable, editable text profiles of user preferences from interaction histories.")
app.command()(_profiles.infer)
app.command()(_profiles.choose)
app.command()(_profiles.respond)
app.command()(_demo.demo)
app.command()(_service.serve)
app.command()(_service.worker)
app.add_typer(_service.keys_app, name="keys")
app.add_typer(_service.db_app, name="db")
app.add_typer(_train.app, name="train")
app.command()(_synth.synth)
app.command()(_synth.prune)
app.command(name="eval")(_eval.eval)
app.command()(_eval.report)
app.command()(_eval.compare)
app.command()(_measure.calibrate)
app.command(name="persona-set")(_personaset.persona_set)
app.command()(_batch.batch)
app.command(name="export")(_portability.export)
app.command(name="import")(_portability.import_)
app.command()(_mcp.mcp)


# The extra each command group needs, when a module of several extras is missing (matplotlib: eval, train).
COMMAND_EXTRAS = {"serve": "serve", "worker": "serve", "keys": "serve", "db": "serve", "train": "train",
                  "eval": "eval", "report": "eval", "compare": "eval", "batch": "batch", "export": "serve",
                  "import": "serve", "mcp": "mcp"}


def main() -> None:
    try:
        app()
    except ModuleNotFoundError as exc:  # an extra not installed: say which, in one line, not a traceback
        words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
        command = " ".join(words[:2] if words[:1] in (["keys"], ["db"], ["train"]) else words[:1]) or "?"
        sys.stderr.write(missing_module_message(command, exc.name or "?", COMMAND_EXTRAS.get(words[0] if words
                                                                                             else "")) + "\n")
        sys.exit(1)
