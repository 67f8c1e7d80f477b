"""Profiles: TOML parsed into frozen, validated models; discovery, inheritance and trust (pure but file reads)."""
