"""A scripted, fault-injecting stand-in for the OpenAI chat-completions API.

End-to-end tests and the benchmark need to drive the real litellm-based agent without a real
model: answers must be predictable (a script indexed by conversation turn) and the failure
modes of real providers (rate limits, server errors, hangs, broken bodies, broken tool-call
arguments) must be reproducible on demand from a seed. The server only ever binds a loopback
address, so a test run can never expose it or reach anything else.

The request path deliberately avoids pydantic and anything heavier than ``json``: the benchmark
holds hundreds of requests open at once on a small machine, and the server must not become the
bottleneck it is supposed to be measuring around.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.testing.scripted_replies import (
    FaultDecider,
    FaultDecision,
    Faults,
    Reply,
    ReplyError,
    Script,
)
from tools.arguments import example_arguments

__all__ = [
    "FaultDecider",
    "FaultDecision",
    "Faults",
    "Reply",
    "ReplyError",
    "Script",
    "ScriptedOpenAIServer",
    "ServerStats",
    "main",
]

NO_MATCHING_TOOL = "no matching tool"

# The text fallback protocol: tools are described in a JSON list between lines holding only
# these markers, and calls come back as tagged JSON blocks in the assistant's plain text.
_TOOLS_BLOCK = re.compile(r"^[ \t]*<tools>[ \t]*$(.*?)^[ \t]*</tools>[ \t]*$", re.M | re.S)
_TRUNCATED_BODY = '{"id": "chatcmpl-garbled", "object": "chat.completion", "choices": ['


@dataclass
class ServerStats:
    """Counters a test can assert on; ``ok`` includes replies with malformed arguments.
    ``in_flight`` is the number of chat requests being answered now and ``peak_in_flight`` its
    highest value: HTTP/1.1 carries one request at a time per connection, so it is also how
    many connections the client had open and busy at once."""

    requests: int = 0
    ok: int = 0
    failed_429: int = 0
    failed_500: int = 0
    slow: int = 0
    garbled: int = 0
    malformed: int = 0
    rejected: int = 0
    scripted_errors: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    requests_log: collections.deque[dict[str, Any]] | None = None


def _text_of(content: Any) -> str:
    """Message content is either a string or a list of typed parts; only text matters here."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _native_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    found = []
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            found.append(tool["function"])
    return found


def _text_protocol_tools(messages: Sequence[Any]) -> list[dict[str, Any]] | None:
    """Tools described in the prompt by the text fallback, or None if the prompt has none."""
    for role in ("system", "user"):
        for message in messages:
            if not isinstance(message, dict) or message.get("role") != role:
                continue
            match = _TOOLS_BLOCK.search(_text_of(message.get("content")))
            if match is None:
                continue
            try:
                parsed = json.loads(match.group(1))
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, list):
                return [t for t in parsed if isinstance(t, dict)]
    return None


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": kind, "param": None, "code": code}
    return web.Response(
        status=status, text=json.dumps({"error": error}), content_type="application/json"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ScriptedOpenAIServer:
    """An aiohttp server answering chat completions from a `Script`, with injected `Faults`."""

    def __init__(
        self,
        script: Script | None = None,
        faults: Faults | None = None,
        model_name: str = "scripted",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record_requests: bool = False,
        record_limit: int = 1000,
        supports_tools: bool = True,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"refusing to bind non-loopback host {host!r}")
        self.script = script if script is not None else Script()
        self.faults = faults if faults is not None else Faults()
        self.model_name = model_name
        # False imitates a model without function calling: requests carrying `tools` get the
        # 400 such providers send, which is what triggers the agent's text-protocol fallback.
        self.supports_tools = supports_tools
        self.host = "127.0.0.1" if host == "localhost" else host
        self._requested_port = port
        self.port = 0
        self.stats = ServerStats(
            requests_log=collections.deque(maxlen=record_limit) if record_requests else None
        )
        self._decider = FaultDecider(self.faults)
        # Scripted errors sent so far, per script turn.
        self._errors_sent: collections.Counter[int] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("server already started")
        self._closing = asyncio.Event()
        # Long conversations with big tool outputs exceed aiohttp's 1 MiB default body limit.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_get(f"{prefix}/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        # No access log: at hundreds of requests a second it costs more CPU than the replies.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        # A large backlog stops bursts of hundreds of simultaneous connects from being dropped
        # and retried by the kernel a second later, which would distort benchmark latencies.
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=2048)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        # Wake requests parked in a scripted delay so shutdown never waits out a 30 s hang.
        self._closing.set()
        await runner.cleanup()

    def release(self) -> None:
        """Answer every request now waiting out its scripted delay, and those to come without
        one: a test can hold hundreds of requests open at once (a long ``Faults.delay_s``),
        check what it wanted to see, then let them finish."""
        self._closing.set()

    async def __aenter__(self) -> ScriptedOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._closing.is_set():
            return
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _stats(self, request: web.Request) -> web.Response:
        """The counters (`ServerStats`, without the request log) for a parent process;
        ``?reset_peak=1`` starts ``peak_in_flight`` over from the requests open now."""
        counters = {k: v for k, v in vars(self.stats).items() if k != "requests_log"}
        if request.query.get("reset_peak"):
            self.stats.peak_in_flight = self.stats.in_flight
        return web.json_response(counters)

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "sandbox"}
        return web.json_response({"object": "list", "data": [model]})

    async def _chat(self, request: web.Request) -> web.Response:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await self._answer(request)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        stats = self.stats
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            stats.rejected += 1
            return _error(400, "request body is not valid JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            stats.rejected += 1
            return _error(400, "'messages' must be a list", "invalid_request_error")
        if stats.requests_log is not None:
            stats.requests_log.append(body)
        if body.get("stream"):
            stats.rejected += 1
            return _error(400, "streaming is not supported by this server", "invalid_request_error")
        if body.get("tools") and not self.supports_tools:
            stats.rejected += 1
            return _error(
                400, "this model does not support tools (function calling)", "invalid_request_error"
            )

        scripted = self._scripted_error(body)
        if scripted is not None:
            return scripted
        decision = self._decider.next()
        delay = self.faults.delay_s
        if decision.slow:
            stats.slow += 1
            delay += self.faults.slow_delay_s
        await self._sleep(delay)

        if decision.outcome == "429":
            stats.failed_429 += 1
            return _error(
                429,
                "Rate limit reached (injected fault)",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
            )
        if decision.outcome == "500":
            stats.failed_500 += 1
            return _error(500, "internal error", "server_error")
        if decision.outcome == "garbled":
            stats.garbled += 1
            return web.Response(text=_TRUNCATED_BODY, content_type="application/json")

        payload = self._completion(body, malformed=decision.malformed)
        stats.ok += 1
        return web.Response(text=payload, content_type="application/json")

    @staticmethod
    def _turn(body: dict[str, Any]) -> int:
        messages: list[Any] = body["messages"]
        return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")

    def _scripted_error(self, body: dict[str, Any]) -> web.Response | None:
        turn = self._turn(body)
        error = self.script.reply_for(turn).error
        if error is None or self._errors_sent[turn] >= error.times:
            return None
        self._errors_sent[turn] += 1
        self.stats.scripted_errors += 1
        response = _error(error.status, error.message, error.kind)
        if error.retry_after is not None:
            response.headers["Retry-After"] = error.retry_after
        return response

    def _completion(self, body: dict[str, Any], *, malformed: bool) -> str:
        messages: list[Any] = body["messages"]
        turn = self._turn(body)
        reply = self.script.reply_for(turn)
        if not reply.is_call and reply.text is None:  # an error-only turn, errors spent
            reply = self.script.default

        content: str | None = reply.text
        tool_calls: list[dict[str, Any]] = []
        if reply.is_call:
            native = _native_tools(body)
            text_tools = None if native else _text_protocol_tools(messages)
            tool = reply.pick_tool(native if native else text_tools or [])
            if tool is None:
                content = NO_MATCHING_TOOL
            else:
                malformed = malformed or reply.raw_arguments is not None
                if malformed:
                    self.stats.malformed += 1
                if text_tools is not None:
                    blocks = [self._text_call(reply, tool, malformed) for _ in range(reply.count)]
                    content = "\n".join([reply.text, *blocks] if reply.text else blocks)
                else:
                    arguments = self._arguments_text(reply, tool, malformed)
                    name = str(tool.get("name", ""))
                    tool_calls = [
                        {
                            "id": reply.call_id or f"call_{uuid.uuid4().hex[:12]}",
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                        for _ in range(reply.count)
                    ]

        message: dict[str, Any] = {"role": "assistant", "content": content}
        completion_chars = len(content or "")
        if tool_calls:
            message["tool_calls"] = tool_calls
            completion_chars += sum(len(c["function"]["arguments"]) for c in tool_calls)
        prompt_chars = sum(len(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, completion_chars // 4)
        return json.dumps(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or self.model_name),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if tool_calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    @staticmethod
    def _arguments_text(reply: Reply, tool: Mapping[str, Any], malformed: bool) -> str:
        if reply.raw_arguments is not None:
            return reply.raw_arguments
        if reply.arguments is not None:
            arguments: Mapping[str, Any] = reply.arguments
        else:
            parameters = tool.get("parameters")
            arguments = example_arguments(parameters if isinstance(parameters, dict) else {})
        text = json.dumps(arguments)
        # Dropping the closing brace of a JSON object always leaves it unparseable.
        return text[:-1] if malformed else text

    @classmethod
    def _text_call(cls, reply: Reply, tool: Mapping[str, Any], malformed: bool) -> str:
        name = json.dumps(str(tool.get("name", "")))
        arguments = cls._arguments_text(reply, tool, malformed)
        return f'<tool_call>{{"name": {name}, "arguments": {arguments}}}</tool_call>'


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.testing.openai_server",
        description="Scripted, fault-injecting OpenAI-compatible server on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, default=None, help="script JSON file")
    parser.add_argument("--model-name", default="scripted")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--slow-delay", type=float, default=30.0)
    parser.add_argument("--garbled-rate", type=float, default=0.0)
    parser.add_argument("--malformed-args-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fail-statuses", default="429,500", help="comma-separated subset of 429,500"
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    script = Script.load(args.script) if args.script is not None else Script()
    faults = Faults(
        delay_s=args.delay,
        fail_rate=args.fail_rate,
        slow_rate=args.slow_rate,
        slow_delay_s=args.slow_delay,
        garbled_rate=args.garbled_rate,
        malformed_args_rate=args.malformed_args_rate,
        seed=args.seed,
        fail_statuses=tuple(int(x) for x in args.fail_statuses.split(",") if x.strip()),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with ScriptedOpenAIServer(
        script, faults, model_name=args.model_name, port=args.port
    ) as s:
        # The single line is the readiness handshake parent processes wait for.
        print(f"LISTENING {s.port}", flush=True)
        await stop.wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop is a free speed-up for the benchmark where present, never a dependency."""
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(args))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
