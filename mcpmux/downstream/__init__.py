"""Downstream servers: one connection each (stdio subprocess or streamable HTTP), and the supervisor of all of them."""
