"""`ltbench`: the Typer app. Thin: parse, call the library, render with rich."""

from __future__ import annotations

import os
import sys

import typer

from lt_bench.errors import LTBenchError
from lt_bench.log import setup_logging
from lt_bench.resources import free_disk, human, is_disk_full

from ._common import ABORTS, CLICK_EXCEPTIONS, USAGE_ERRORS
from .commands import (adapt, datasets, demo, eval as eval_cmd, extract, finetune, leaderboard, report, reproduce,
                       tune)

app = typer.Typer(
    name="ltbench",
    help="Long-tailed recognition with CLIP: finetune once, extract features once, "
         "then train and evaluate every head on the cache in seconds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("datasets")(datasets.datasets)
app.command("finetune")(finetune.finetune)
app.command("extract")(extract.extract)
app.command("adapt")(adapt.adapt)
app.command("eval")(eval_cmd.eval_)
app.command("report")(report.report)
app.command("tune")(tune.tune)
app.command("leaderboard")(leaderboard.leaderboard)
app.command("reproduce")(reproduce.reproduce)
app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Entry point: exit 0 on success, 2 on a usage error, 1 on a runtime error (one line)."""
    setup_logging()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="ltbench", standalone_mode=False)
    except USAGE_ERRORS as e:
        e.show()
        sys.exit(2)
    except ABORTS:
        print("ltbench: aborted", file=sys.stderr)
        sys.exit(130)
    except CLICK_EXCEPTIONS as e:
        e.show()
        sys.exit(e.exit_code)
    except LTBenchError as e:
        print(f"ltbench: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("ltbench: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # the last line of defence: one line, never a traceback (unless asked)
        if os.environ.get("LTBENCH_DEBUG"):
            raise
        print(f"ltbench: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(1)
    if os.environ.get("LTBENCH_DEBUG_RV"):
        print(rv, file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(e: Exception) -> str:
    """What went wrong, in one line: the path for an OS error, else the type and the message."""
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        if is_disk_full(e):  # what is free, and where; the output written before is kept (atomic writes)
            free, folder = free_disk(e.filename or ".")
            return (f"{e.strerror}{where} ({human(free)} free on {folder}): free some space and rerun the same "
                    "command; what was there before is unchanged")
        return f"{e.strerror}{where} (check the path, its permissions and the free disk space)"
    if isinstance(e, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({e.reason} at byte {e.start}): check the file given"
    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return (f"unexpected {type(e).__name__}{': ' + first if first else ''} "
            "(rerun with LTBENCH_DEBUG=1 for the traceback, and please report it)")


if __name__ == "__main__":
    main()
