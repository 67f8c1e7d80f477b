"""Shared mode: one gateway process per user and profile, reached by every `mcpmux serve --shared`.

`pipe` is the `serve` side (a thin stdio ↔ socket byte pipe, started by the host); `daemon` is the
gateway process (one front per attached host over one set of downstreams, front/hosts.py); `spawn`
starts it detached; `address` names its socket and lock; `lock` makes starting it race-free; `sock`
holds the Unix socket helpers (owner-only folder and socket, peer uid checked).
"""
