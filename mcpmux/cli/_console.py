"""Consoles for the CLI. Human output goes to stderr unless a command's job is to print data."""

from rich.console import Console

err_console = Console(stderr=True)
out_console = Console()
