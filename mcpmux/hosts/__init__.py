"""Host applications' MCP configs: reading, importing from and installing mcpmux into them."""
