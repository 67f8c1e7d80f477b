"""The benchmark's downstream: a small MCP server built with the SDK, spoken to over stdio.

Run: `python bench/echo_server.py [--name NAME]`. Two tools: `echo` returns its text,
`blob` returns a string of exactly `size` bytes (ASCII), for payload scenarios.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer


def build(name: str) -> MCPServer:
    server = MCPServer(name)

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool(structured_output=False)  # the payload crosses the wire once, as text content
    def blob(size: int) -> str:
        """Return a string of `size` bytes."""
        return "x" * max(0, size)

    return server


if __name__ == "__main__":
    args = sys.argv[1:]
    name = args[args.index("--name") + 1] if "--name" in args[:-1] else "echo"
    build(name).run()
