"""The `mcpmux` command line: thin typer commands over the library.

Each command group lives in its own module and registers itself on `app` here.
`main()` is the one place exceptions become exit codes: a user-fixable
`MCPMuxError` prints one clear message and exits 1; Ctrl-C exits 130.
"""

from __future__ import annotations

import sys

import typer

from mcpmux.cli._console import say
from mcpmux.errors import MCPMuxError

app = typer.Typer(
    name="mcpmux",
    help="A local MCP gateway: one stdio server in front of many, with policy, keyring secrets and an audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so that each module can import `app` from this package.
    from mcpmux.cli import commands

    commands.register(app)


def main() -> None:
    _register()
    try:
        code = app(standalone_mode=False)
        # click returns a command's `typer.Exit` code instead of raising when not standalone.
        if isinstance(code, int) and code:
            sys.exit(code)
    except MCPMuxError as exc:
        # One problem per line, never wrapped: editors and CI jump to `file:line:` prefixes. Messages quote
        # profiles and servers, so control characters are escaped (`say`).
        say(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
