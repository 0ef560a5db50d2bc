"""Secrets never reach the run directory, the HTML report or an export, wherever they come
from: the variable named with --api-key-env (whatever it is called), a provider echoing the
key back, a key containing quotes and backslashes, settings and headers in a config, and the
password of an --api-base URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.results.exports import export_run
from sandbox.results.html_report import write_html_report
from sandbox.results.redaction import REDACTED, Redactor
from sandbox.testing import Script, ScriptedOpenAIServer

KEY = 'sk"odd\\key-0123456789abcdef'  # a quote and a backslash: escaped in every JSON line
HEADER = "hdr-secret-value-98765"
PASSWORD = "url-pass-5555aaaa"


def _everything(root: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in root.rglob("*") if p.is_file()
    )


def test_json_escaped_forms_of_a_secret_are_redacted() -> None:
    redact = Redactor(environ={}, extra=[KEY])
    line = json.dumps({"content": f"echo: {KEY}", "ascii": json.dumps(KEY)})
    assert KEY not in redact(line) and json.dumps(KEY)[1:-1] not in redact(line)
    assert REDACTED in redact(line)


async def test_no_secret_reaches_the_run_directory_or_anything_made_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_GATEWAY_CRED_X", KEY)  # a name no pattern would call secret
    echo = f"Your key {KEY} was rejected; header {HEADER}; url password {PASSWORD}."
    script = Script.from_dict({"default": {"text": echo}})
    async with ScriptedOpenAIServer(script) as server:
        # Credentials in a URL setting (the judge's server here: the agent's own client refuses
        # them next to its key), and in the command line that the manifest records.
        judge_base = server.url.replace("http://", f"http://user:{PASSWORD}@")
        config = RunConfig(
            suite="starter",
            agents=[
                AgentSpec(
                    spec="openai/scripted",
                    api_base=server.url,
                    api_key_env="LLM_GATEWAY_CRED_X",
                    extra={"extra_headers": {"X-Gateway-Auth": HEADER}},
                )
            ],
            scenario_ids=["cyber-log-retention"],
            categories=["time"],
            namings=["harmful"],  # type: ignore[list-item]
            max_turns=2,
            judge_api_base=judge_base,
        )
        result = await start_run(
            config, tmp_path / "run", argv=["propensity", "run", "--judge-api-base", judge_base]
        )
    assert result.summary.scored >= 1
    html = write_html_report(result.run_dir, tmp_path / "report.html")
    exports = tmp_path / "exports"
    for fmt in ("jsonl", "csv"):
        export_run(result.run_dir, fmt, exports / fmt)  # type: ignore[arg-type]
    written = _everything(result.run_dir) + html.read_text() + _everything(exports)
    for secret in (KEY, json.dumps(KEY)[1:-1], HEADER, PASSWORD):
        assert secret not in written, secret
    assert REDACTED in _everything(result.run_dir)


def test_a_secret_escaped_twice_is_redacted_too() -> None:
    redact = Redactor(environ={}, extra=[KEY])
    echoed_body = json.dumps({"error": f"invalid key {KEY}"})  # a provider's JSON error body
    line = json.dumps({"message": echoed_body})  # ... written inside our own JSON line
    assert KEY not in redact(line) and json.dumps(KEY)[1:-1] not in redact(line)
    assert json.dumps(json.dumps(KEY)[1:-1])[1:-1] not in redact(line)
