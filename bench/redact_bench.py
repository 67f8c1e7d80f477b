"""`python -m bench.redact_bench`: what redacting one relayed result costs, small and 10 MB, with and without a secret.

`Redactor.redact_bytes` runs on every result line a downstream returns. Measured per call
(CPU time, best of several runs, so other load on the machine counts less) for a server
with one secret and with three, on lines written as orjson writes them (the SDKs), with
the secret raw or escaped the way Go writes it, and on two lines dense with `\\u` escapes
(`json.dumps` of non-ASCII text; every character escaped).
"""

from __future__ import annotations

import json
import time

import orjson
from rich.console import Console
from rich.table import Table

from mcpmux.secrets.redact import Redactor

API = "tok/+?=&" + "0123456789abcdef" * 2
SERVERS = {
    "1 secret": {"api": API},
    "3 secrets": {"api": API, "db": 'p@ss/w+rd?=ünï"\\x', "gh": "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"},
}
FILLER = 'lorem ipsum dolor sit amet, "quoted" line\n' * 250_000  # 10 MB of text, escapes every 20 bytes


def line(text: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}})


def every_character_escaped(text: str) -> bytes:
    escaped = "".join(f"\\u{ord(c):04x}" for c in text)
    return b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"' + escaped.encode() + b'"}]}}'


LINES = {
    "small, no secret": line("hello world, the result is 42"),
    "small, with the secret": line(f"token {API}"),
    "10 MB, no secret": line(FILLER),
    "10 MB, the secret raw": line(FILLER + API),
    "10 MB, the secret as Go writes it": line(FILLER + API.replace("&", "\\u0026")),
    "10 MB of json.dumps non-ASCII text": json.dumps({"result": {"text": "dólor ünï ñ " * 330_000}}).encode(),
    "10 MB, every character \\u-escaped": every_character_escaped("lorem ipsum dolor sit amet " * 65_000),
}


def cpu_seconds(redactor: Redactor, data: bytes) -> float:
    runs = 2000 if len(data) < 4096 else 10
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        redactor.redact_bytes(data)
        best = min(best, time.process_time() - start)
    return best


def shown(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main() -> None:
    redactors = {label: Redactor(secrets) for label, secrets in SERVERS.items()}
    table = Table("result line", "size", *redactors, title="redact_bytes per result")
    for name, data in LINES.items():
        size = f"{len(data) / 1e6:.1f} MB" if len(data) > 4096 else f"{len(data)} B"
        table.add_row(name, size, *(shown(cpu_seconds(r, data)) for r in redactors.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
