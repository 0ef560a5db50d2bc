from __future__ import annotations

from sandbox.results.redaction import REDACTED, Redactor


def test_literal_secrets_from_the_environment_and_known_key_formats() -> None:
    redact = Redactor(environ={"MY_SERVICE_TOKEN": "tok-12345678", "HOME": "/root"})
    text = (
        "token tok-12345678, openai sk-abcdefghijklmnopqrstuv, "
        "anthropic sk-ant-api03-xyzXYZ0123456789, "
        "github ghp_abcdefghijklmnopqrstuvwxyz0123456789, "
        "header Authorization: Bearer abc.def-ghi_jkl012345"
    )
    out = redact(text)
    for secret in (
        "tok-12345678",
        "sk-abcdefghijklmnopqrstuv",
        "sk-ant-api03-xyzXYZ0123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "abc.def-ghi_jkl012345",
    ):
        assert secret not in out
    assert out.count(REDACTED) == 5
    assert "/root" in redact("home is /root")  # not a secret-looking variable


def test_ordinary_text_is_untouched() -> None:
    redact = Redactor(environ={})
    text = "The high-throughput sk- prefix alone, a task-key, and ghost ghp_ short are fine."
    assert redact(text) == text
