"""Secret references resolved from the OS keyring into one downstream's environment, and redaction of their values."""
