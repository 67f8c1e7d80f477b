"""The front: mcpmux's own MCP server on the host's stdio, in either protocol era."""
