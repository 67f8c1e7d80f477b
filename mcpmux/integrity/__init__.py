"""Tool-definition integrity: pinned hashes of what each server exposes and scans for poisoned descriptions."""
