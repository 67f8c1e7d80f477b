"""The audit log: one JSON line per decision and outcome, hash-chained; reading, querying, verifying, telemetry."""
