"""Keeping secrets off disk: every trajectory and manifest line passes through a Redactor.

Two nets: the literal values of secret-looking environment variables (so a key that leaks into
a prompt or an error message is caught whatever its format), and patterns of well-known key
formats (so keys that are not in this process's environment are caught too).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
# Every pattern below contains one of these fixed strings; lines with none of them (nearly all)
# skip the regex, which is what keeps redaction cheap on the hot path of every event written.
_KEY_MARKERS = (
    "sk-",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xox",
    "AKIA",
    "hf_",
    "earer",
    "EARER",
)
_KEY_PATTERNS = [
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic (sk-ant-...), many compatible servers
    r"AIza[0-9A-Za-z_\-]{30,}",  # Google
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub
    r"xox[abpr]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"(?i:bearer)\s+[A-Za-z0-9_\-\.=]{16,}",
]
_MIN_SECRET_LENGTH = 8


class Redactor:
    def __init__(self, environ: Mapping[str, str] | None = None, extra: list[str] | None = None):
        environ = os.environ if environ is None else environ
        literals = {
            value
            for name, value in environ.items()
            if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH
        }
        literals.update(v for v in (extra or []) if len(v) >= _MIN_SECRET_LENGTH)
        # Longest first, so a secret that contains another is removed whole.
        alternatives = [re.escape(v) for v in sorted(literals, key=len, reverse=True)]
        alternatives += _KEY_PATTERNS
        self._pattern = re.compile("|".join(alternatives))
        self._markers = tuple(sorted(literals)) + _KEY_MARKERS

    def __call__(self, text: str) -> str:
        if not any(marker in text for marker in self._markers):
            return text
        return self._pattern.sub(REDACTED, text)
