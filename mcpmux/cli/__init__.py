"""The `mcpmux` command line: thin typer commands over the library.

Each command group lives in its own module and registers itself on `app` here.
`main()` is the CLI's error boundary, the one place where exceptions become exit codes:

    0    done
    1    a user-fixable `MCPMuxError` (one line `error: …` on stderr), or a command's own failure
    2    a usage error: unknown command or option, missing or bad argument (typer's usage message)
    3    anything mcpmux did not foresee: one line naming a crash report file, never a traceback
    130  Ctrl-C

It depends on no typer internals: typer runs in its standalone mode, whose public contract is
to print its own usage errors and exit 2 (and 0 after `--help`), so only exceptions typer does
not know about (ours, and bugs) reach `main()`.
"""

from __future__ import annotations

import gc
import sys
from typing import Annotated

import typer

from mcpmux import __version__
from mcpmux.cli._console import say
from mcpmux.errors import MCPMuxError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CRASH = 3
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="mcpmux",
    help="A local MCP gateway: one stdio server in front of many, with policy, keyring secrets and an audit log.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mcpmux {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print mcpmux's version and exit."),
    ] = False,
) -> None:
    """Options of `mcpmux` itself (the help text shown is the app's)."""


def _register() -> None:
    # Imported here so that each module can import `app` from this package.
    from mcpmux.cli import commands

    commands.register(app)


def _say(text: str) -> None:
    # One problem per line, never wrapped: editors and CI jump to `file:line:` prefixes. Messages quote
    # profiles and servers, so control characters are escaped (`say`).
    say(text)


def _exit_code(code: object) -> int:
    """`SystemExit.code` as a process exit code: None is success, a message is printed and fails."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    _say(str(code))
    return EXIT_ERROR


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C led to `exc`: typer ends a prompt interrupted by Ctrl-C with "Aborted" and exit 1."""
    cause, hops = exc.__context__, 0
    while cause is not None and hops < 100:  # Python's implicit chaining: each exception raised while handling one
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause, hops = cause.__context__, hops + 1
    return False


def _crashed(exc: BaseException) -> int:
    from mcpmux.cli._crash import write_crash_report

    report, why_not = write_crash_report(exc, sys.argv)
    summary = f"mcpmux: unexpected error ({type(exc).__name__}: {exc})"
    if report is not None:
        _say(f"{summary}; the details are in {report}: please report it with that file")
    else:
        _say(f"{summary}; no report could be written ({why_not}): please report it with the command you ran")
    return EXIT_CRASH


def run() -> int:
    """Run the command line in `sys.argv` and return its exit code; never raises, never prints a traceback."""
    try:
        _register()
        app(prog_name="mcpmux")
    except SystemExit as exit_:  # typer's standalone mode ends every run it handled itself this way
        code = _exit_code(exit_.code)
        return EXIT_INTERRUPTED if code and _interrupted(exit_) else code
    except MCPMuxError as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:  # typer maps one raised inside a command; this catches the rest (imports, start-up)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _crashed(exc)
    return 0


def main() -> None:
    code = run()
    # The process ends here: its objects need no collecting. Frozen, the interpreter's final collection skips
    # walking them all (mcp, pydantic and typer make that 0.5 s, and over 1 s on a busy machine), so a host that
    # closed stdin sees `serve` gone at once instead of waiting for a garbage collection nobody needs.
    gc.freeze()
    sys.exit(code)
