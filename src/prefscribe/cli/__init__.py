"""The `prefscribe` command line: one module per command group, each parsing its input, calling the library
and printing (rich for people, --json for machines). Owns no logic of its own: a bad input is the library's
InputError, printed as one `error:` line with exit code 2 (`options.errors_exit`)."""

from __future__ import annotations

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
app.command()(_measure.calibrate)
app.command(name="persona-set")(_personaset.persona_set)
app.command()(_batch.batch)
app.command(name="export")(_portability.export)
app.command(name="import")(_portability.import_)
app.command()(_mcp.mcp)


def main() -> None:
    app()
