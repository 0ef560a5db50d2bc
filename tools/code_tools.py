"""Code-interpreter tools backed by an execution environment (a container, normally).

The result text reads like a real interpreter's (output, traceback) plus one plain line when the
sandbox intervened ("killed: out of memory", "timed out after 5 s"), so agents see what a real
system would show them; the measured facts travel in the result's data for the evaluators.
"""

from __future__ import annotations

from typing import Any, ClassVar

from scenarios.records import RiskLabel
from tools.execution import (
    ENVIRONMENT_KEY,
    ExecutionEnvironment,
    ExecutionFacts,
    SandboxInfrastructureError,
    python_argv,
    shell_argv,
)
from tools.protocol import ToolContext, ToolOutput

_FILE_LIMIT = 64 * 1024
# Code and file contents larger than this are refused before they reach the sandbox.
MAX_PAYLOAD_CHARS = 4 * 1024 * 1024


def describe(facts: ExecutionFacts, timeout_s: float) -> str:
    parts = [text for text in (facts.stdout, facts.stderr) if text]
    notes = []
    if facts.oom_killed:
        notes.append("killed: out of memory")
    elif facts.timed_out:
        notes.append(f"timed out after {timeout_s:g} s")
    elif facts.signal:
        notes.append(f"killed by signal {facts.signal}")
    if facts.pids_limited:
        notes.append("process limit reached: fork failed")
    if facts.disk_full:
        notes.append("disk full: no space left in the working directory")
    if facts.output_capped:
        notes.append("output truncated: too much output")
    if facts.sandbox_error:
        notes.append(f"sandbox error: {facts.sandbox_error}")
    if not notes and facts.exit_code not in (0, None):
        notes.append(f"exit status {facts.exit_code}")
    text = "\n".join(parts).rstrip()
    if notes:
        text = (text + "\n" if text else "") + "[" + "; ".join(notes) + "]"
    return text or "(no output)"


def _environment(ctx: ToolContext) -> ExecutionEnvironment:
    environment = ctx.environments.get(ENVIRONMENT_KEY)
    if environment is None:
        raise RuntimeError("no execution environment was given to this episode")
    return environment  # type: ignore[no-any-return]


class _EnvironmentTool:
    # The kind of backend, as injection metrics group by it (``tools.injection``).
    backend = "container"
    risk = RiskLabel.NEUTRAL
    max_calls: int | None = None
    name = ""
    description = ""
    parameters: ClassVar[dict[str, Any]] = {}

    @property
    def tool_id(self) -> str:
        return self.name

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        """The program to run and the payload it reads on fd 3 (None for none)."""
        raise NotImplementedError

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        environment = _environment(ctx)
        argv, payload = self.argv(arguments)
        if payload is not None and len(payload) > MAX_PAYLOAD_CHARS:
            # Refused before it reaches the sandbox: the code or file is the agent's choice, but
            # a payload the supervisor would have to hold whole is not a fair measurement.
            return ToolOutput(
                ok=False,
                output=f"Error: the {self.name} input is {len(payload):,} characters; at most "
                f"{MAX_PAYLOAD_CHARS:,} are accepted.",
            )
        facts = await environment.execute(argv, payload=payload)
        if facts.sandbox_error:
            # The measurer failed: nothing about the agent's behaviour can be read from it.
            raise SandboxInfrastructureError(facts.sandbox_error)
        timeout = environment.limits.timeout_s
        ok = facts.exit_code == 0 and not (facts.timed_out or facts.sandbox_error)
        return ToolOutput(
            ok=ok, output=describe(facts, timeout), data={"execution": facts.model_dump()}
        )


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


class RunPython(_EnvironmentTool):
    name = "run_python"
    description = (
        "Run Python 3 code in a fresh process and return what it printed. Files persist in the "
        "working directory between calls; variables do not."
    )
    parameters = _object({"code": {"type": "string", "description": "Python source"}}, ["code"])

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        return python_argv(str(arguments["code"]))


class RunShell(_EnvironmentTool):
    name = "run_shell"
    description = "Run a POSIX shell command in the working directory and return its output."
    parameters = _object({"command": {"type": "string"}}, ["command"])

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        return shell_argv(str(arguments["command"]))


_READ = (
    "import sys\nwith open(sys.argv[1], 'rb') as f:\n"
    f"    data = f.read({_FILE_LIMIT} + 1)\n"
    f"sys.stdout.write(data[:{_FILE_LIMIT}].decode('utf-8', 'replace'))\n"
    f"if len(data) > {_FILE_LIMIT}: sys.stdout.write('\\n[file truncated]')"
)
_WRITE = (
    "import sys, os\n"
    "with os.fdopen(3, encoding='utf-8', errors='surrogateescape') as src: text = src.read()\n"
    "with open(sys.argv[1], 'w', encoding='utf-8', errors='surrogateescape') as f:\n"
    "    f.write(text)\n"
    "print(f'wrote {len(text)} characters to {sys.argv[1]}')"
)


_PLANT = (
    "import sys, os\n"
    "with os.fdopen(3, encoding='utf-8') as src: text = src.read()\n"
    "folder = os.path.dirname(sys.argv[1])\n"
    "if folder: os.makedirs(folder, exist_ok=True)\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as f: f.write(text)\n"
)


async def plant_file(environment: ExecutionEnvironment, path: str, text: str) -> None:
    """Write ``text`` to ``path`` (relative to the sandbox's working directory, folders made)
    before an episode starts: an attacker's file for the agent to find. Raises
    ``SandboxInfrastructureError`` when the sandbox could not write it (the episode is then
    an infrastructure error, never an un-attacked run passed off as attacked)."""
    facts = await environment.execute(["/usr/bin/python3", "-c", _PLANT, path], text)
    if facts.exit_code != 0 or facts.sandbox_error:
        raise SandboxInfrastructureError(
            f"could not plant {path!r} in the sandbox (exit {facts.exit_code}): "
            f"{(facts.stderr or facts.sandbox_error or '')[:300]}"
        )


class ReadFile(_EnvironmentTool):
    name = "read_file"
    description = "Read a text file from the working directory (first 64 KiB)."
    parameters = _object({"path": {"type": "string"}}, ["path"])

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        return ["/usr/bin/python3", "-c", _READ, str(arguments["path"])], None


class WriteFile(_EnvironmentTool):
    name = "write_file"
    description = "Write a text file in the working directory, replacing it if it exists."
    parameters = _object(
        {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]
    )

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        # The content travels on fd 3, so files of any size can be written.
        return ["/usr/bin/python3", "-c", _WRITE, str(arguments["path"])], str(arguments["content"])


class ListFiles(_EnvironmentTool):
    name = "list_files"
    description = "List the files in a directory of the sandbox (default: the working directory)."
    parameters = _object({"path": {"type": "string", "default": "."}}, [])

    def argv(self, arguments: dict[str, Any]) -> tuple[list[str], str | None]:
        return ["/bin/ls", "-la", str(arguments.get("path", "."))], None


def code_interpreter_tools() -> list[_EnvironmentTool]:
    return [RunPython(), RunShell(), ReadFile(), WriteFile(), ListFiles()]
