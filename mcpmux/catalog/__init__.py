"""The merged route table: names, URIs, listings filtered by policy and integrity (pure, immutable snapshots)."""
