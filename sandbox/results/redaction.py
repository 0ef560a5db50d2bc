"""Keeping secrets off disk: every trajectory and manifest line passes through a Redactor.

Two nets: the literal values of secret-looking environment variables (so a key that leaks into
a prompt or an error message is caught whatever its format), and patterns of well-known key
formats (so keys that are not in this process's environment are caught too).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

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
# Keys of settings and headers whose values are secrets (api_key, Authorization, x-api-key...).
_SECRET_KEY = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SIGNATURE)", re.IGNORECASE
)


def _forms(value: str, depth: int = 3) -> set[str]:
    """A secret as it can appear in text we write: raw, and escaped inside a JSON string
    (quotes, backslashes, control and non-ASCII characters), once or again (a provider's JSON
    error body quoting the key, itself written as a JSON string), so a secret containing `"`
    or `\\` is caught in serialised records too."""
    forms = {value}
    frontier = {value}
    for _ in range(depth):
        frontier = {
            escaped
            for text in frontier
            for escaped in (json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1])
        } - forms
        forms |= frontier
    return forms


def url_secret(url: str | None) -> str | None:
    """The password of a ``user:password@host`` URL (None when there is none)."""
    if not url or "@" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def settings_secrets(value: Any, key: str = "") -> Iterable[str]:
    """Secret values inside nested settings: strings under secret-looking keys (also inside
    header mappings), and passwords of URLs."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from settings_secrets(item, str(name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from settings_secrets(item, key)
    elif isinstance(value, str):
        if _SECRET_KEY.search(key):
            yield value
        password = url_secret(value)
        if password:
            yield password


class Redactor:
    def __init__(self, environ: Mapping[str, str] | None = None, extra: list[str] | None = None):
        environ = os.environ if environ is None else environ
        found = {
            value
            for name, value in environ.items()
            if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH
        }
        found.update(v for v in (extra or []) if len(v) >= _MIN_SECRET_LENGTH)
        literals = {form for value in found for form in _forms(value)}
        # Longest first, so a secret that contains another is removed whole.
        alternatives = [re.escape(v) for v in sorted(literals, key=len, reverse=True)]
        alternatives += _KEY_PATTERNS
        self._pattern = re.compile("|".join(alternatives))
        self._markers = tuple(sorted(literals)) + _KEY_MARKERS

    def __call__(self, text: str) -> str:
        if not any(marker in text for marker in self._markers):
            return text
        return self._pattern.sub(REDACTED, text)
