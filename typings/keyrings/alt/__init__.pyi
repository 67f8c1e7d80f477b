# keyrings.alt ships no types (no py.typed, no stubs); tests/ uses only `file.PlaintextKeyring`.
