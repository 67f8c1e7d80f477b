"""mcpmux benchmark: the same SDK client against an echo server, directly and through `mcpmux serve`.

Run `python -m bench` (about 2-3 minutes on 2 cores) or `python -m bench --quick` (a
smoke test, well under 30 s); `--json` prints machine-readable results instead of the
table. Variants are interleaved round by round so that machine noise hits both alike;
each cell is the median over rounds with the spread (min-max) beside it.
"""
