"""`python -m mcpmux` and the `mcpmux` command.

A shared `serve` to a gateway that already runs becomes its pipe here, before the CLI (typer, rich) is
imported: attaching a host then costs an interpreter start and a hello (shared/fast.py).
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        from mcpmux.shared.fast import attach_running

        attach_running(sys.argv[2:])  # returns unless it became the pipe
    from mcpmux.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
