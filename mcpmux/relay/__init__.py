"""The hot path: a host's tools/call routed, decided, forwarded, shaped and audited without a task per call."""
