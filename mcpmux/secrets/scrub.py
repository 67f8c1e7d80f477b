"""Redaction on the channels a person reads: mcpmux's own log records (stderr, files).

The front redacts everything toward the host at its one exit (front/server.py `to_host`)
and the audit log redacts each event before it is chained; this filter does the same for
every record logged under the `mcpmux` logger, so a secret echoed in a downstream's error,
a failed start's reason or an exception's text never reaches a terminal or a log file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mcpmux.secrets.redact import Redactor


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with every secret of the running profile redacted."""

    def __init__(self, redactor: Callable[[], Redactor]) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor()
        if redactor:
            message = record.getMessage()
            redacted = redactor.redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info is not None and record.exc_text is None:
                record.exc_text = redactor.redact_text(logging.Formatter().formatException(record.exc_info))
        return True
