"""mcpmux: a local MCP gateway.

One stdio MCP server (the *front*) in front of many *downstream* servers, with
namespaced catalogs, a profile's *policy* enforced on every list and call,
credentials injected from the OS keyring, and a structured audit log.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
