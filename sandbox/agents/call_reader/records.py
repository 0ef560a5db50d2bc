"""The reader's public records: how a call was written (`CallFormat`), a call read
(`RecoveredCall`), a fragment that could not be read (`UnparsedCall`) and the result of one
read (`ReadResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CallFormat(StrEnum):
    """How a call was written. The values are stable strings recorded in trajectories."""

    TOOL_CALL_TAG = "tool_call_tag"  # Hermes, Qwen2.5, Qwen3: <tool_call>{json}</tool_call>
    XML_FUNCTION = "xml_function"  # Qwen3-Coder <function=N><parameter=K>V..; Llama 3.1 custom
    FENCED_JSON = "fenced_json"  # ```json / ```tool_call / ```tool_code / ``` block of JSON
    BARE_JSON = "bare_json"  # a call object in the reply (Llama 3.x JSON, xLAM, many others)
    MISTRAL = "mistral_tool_calls"  # Mistral [TOOL_CALLS] [{..}] (v3), [TOOL_CALLS]N[ARGS]{..}
    PYTHONIC = "pythonic"  # Llama 3.2/4 [f(x=1)], <|python_start|>, Gemma ```tool_code, f(x=1)
    PYTHON_TAG = "llama_python_tag"  # Llama 3.1 <|python_tag|>{json}; {json}, or N.call(..)
    DEEPSEEK = "deepseek"  # DeepSeek V3/R1/V3.1 <｜tool▁call▁begin｜>..<｜tool▁call▁end｜>
    SPECIAL_TOKEN_LIST = "special_token_list"  # Granite <|tool_call|>, Phi-4 functools, InternLM
    REACT = "react"  # LangChain ReAct: Action: N / Action Input: {json} or text
    GLM = "glm_tool_call"  # GLM-4.5/4.6 <tool_call>N<arg_key>k</arg_key><arg_value>v..
    KIMI = "kimi_k2"  # Kimi K2 <|tool_call_begin|>functions.N:0<|tool_call_argument_begin|>{..}
    HARMONY = "harmony"  # gpt-oss: to=functions.N <|constrain|>json<|message|>{json}<|call|>
    FUNCTIONARY = "functionary"  # Functionary v3: >>>N\n{json}
    XML_INVOKE = "xml_invoke"  # Anthropic-style / MiniMax-M2 <invoke name="N"><parameter name=..
    XML_TOOL_TAG = "xml_tool_tag"  # Cline / Roo-Code <N><k>v</k></N>
    YAML = "yaml"  # ```yaml block holding name: N / arguments: {..}
    CALL_LIKE = "call_like_text"  # a tool named in call-like text no reader above reads


@dataclass(frozen=True)
class RecoveredCall:
    """A call to an offered tool. `arguments` is None (and `raw_arguments` holds the text as
    written) when the arguments could not be read as a JSON object; `start`/`end`: the span of
    the whole call in the text read; `repaired`: json_repair was needed."""

    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str | None
    format: CallFormat
    start: int
    end: int
    repaired: bool = False


@dataclass(frozen=True)
class UnparsedCall:
    """A call-shaped fragment that could not be read. `names`: offered tool names found in it
    (may be empty); `excerpt`: at most 300 characters of it; `reason`: short human text such as
    "not valid JSON", "truncated", "unknown tool 'x'", "not read: work limit reached"."""

    format: CallFormat
    names: tuple[str, ...]
    start: int
    end: int
    excerpt: str
    reason: str


@dataclass(frozen=True)
class ReadResult:
    """Calls and unreadable fragments, each in text order. `truncated`: the text was longer than
    `max_chars` and only its first `max_chars` characters were read."""

    calls: tuple[RecoveredCall, ...]
    unparsed: tuple[UnparsedCall, ...]
    truncated: bool = False
