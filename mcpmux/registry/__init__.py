"""Install by name from an MCP registry: `mcpmux search` and `mcpmux add`.

- `document`: the registry API's answers (v0.1 `ServerList` / `ServerResponse`) → checked `Listing`s. Pure.
- `mapping`: one `server.json` → an ordinary `[servers.NAME]` table, the inputs it needs and the secrets
  to store. Pure: no I/O, no prompts of its own (the caller's `ask` answers).
- `client`: HTTP GETs against the registry (stdlib urllib, blocking: the CLI is its only user), with
  `cache` answering when the registry cannot.
"""
