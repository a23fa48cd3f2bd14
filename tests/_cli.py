"""The one way tests run `ltbench`: in this process, through the console script's own entry point.

`run_cli("eval", cache, "--baseline", "ncm")` calls `lt_bench_cli.app.main(argv)` (what the
installed `ltbench` script calls) with stdout and stderr captured, and returns what a
subprocess would give: exit code, stdout, stderr. It costs milliseconds where a subprocess
costs 10+ s of importing torch, open_clip and faiss. Real subprocesses are for tests whose
point is the process (kill -9, torchrun, the installed script itself): `@pytest.mark.slow`.

Differences from a subprocess, on purpose or unavoidable:
- an exception that `main` does not turn into an exit code propagates (a subprocess would print
  a traceback and exit 1): the test fails with the real traceback;
- output written below Python's `sys.stdout` / `sys.stderr` (C libraries, forked DataLoader
  workers, child processes) is not in the result; pytest's own capture shows it on failure;
- Python warnings go to pytest's warning summary, not to stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import NamedTuple


class CliResult(NamedTuple):
    """As `subprocess.CompletedProcess`: `code, out, err = run_cli(...)` or `r.returncode`."""

    returncode: int
    stdout: str
    stderr: str


def _exit_code(e: SystemExit, stderr) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)  # sys.exit("message"): Python prints it and exits 1
    return 1


def run_cli(*argv, threads: int = 1) -> CliResult:
    """`ltbench ARGV` in this process; arguments may be paths or numbers (str() is applied).

    Runs with `threads` torch threads (1: what `subprocess_env`'s OMP_NUM_THREADS=1 gave the
    subprocess tests). Global state a command may change is put back afterwards: torch's thread
    count, the `lt_bench` logger's level (a non-zero rank silences it), os.environ, the cwd.
    """
    import torch

    from lt_bench.log import setup_logging
    from lt_bench_cli.app import main

    setup_logging()  # what main() does first; idempotent: the level saved below is the CLI's
    lt_logger = logging.getLogger("lt_bench")
    saved_level, saved_handlers = lt_logger.level, list(lt_logger.handlers)
    saved_threads, saved_env, saved_cwd = torch.get_num_threads(), dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    torch.set_num_threads(threads)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in argv])
                code = 0
            except SystemExit as e:
                code = _exit_code(e, sys.stderr)
    finally:
        torch.set_num_threads(saved_threads)
        if dict(os.environ) != saved_env:
            os.environ.clear()
            os.environ.update(saved_env)
        os.chdir(saved_cwd)
        lt_logger.setLevel(saved_level)
    assert lt_logger.handlers == saved_handlers, f"a command changed lt_bench's log handlers: {lt_logger.handlers}"
    return CliResult(code, out.getvalue(), err.getvalue())



# -- bad input: one line, the right exit code, nothing lost ------------------------------------------

# Advice a message must never give (issue 15, item 5): torch's, a wrong cure, a flag that then fails.
NEVER_SAID = ("weights_only=False", "will likely succeed", "lower --lr", "--overwrite")


def snapshot(folder) -> dict[str, bytes]:
    """Every file below ``folder`` (symlinks left out) and its bytes: compare before and after."""
    from pathlib import Path

    return {str(p): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file() and not p.is_symlink()}


def check_refused(folder, argv, code: int, words: str) -> CliResult:
    """Run ``ltbench argv`` (``{d}`` in an argument: ``folder``) and check that it exits ``code``
    without a traceback, with ``words`` in its message (exit 1: the one-line error form, as the
    last line), never gives ``NEVER_SAID`` advice, and leaves every file below ``folder`` as it
    was, adding none."""
    before = snapshot(folder)
    r = run_cli(*[a.format(d=folder) for a in argv])
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and words in r.stderr, r.stderr
    assert not any(bad in r.stderr for bad in NEVER_SAID), r.stderr
    if code == 1:
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("ltbench: error: ") and words in last, r.stderr
    assert snapshot(folder) == before  # nothing that existed was touched, nothing was added
    return r
