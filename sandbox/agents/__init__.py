"""Agents: the protocol, the litellm agent, Python agents and reference agents."""

from sandbox.agents.call_reader import (
    CallFormat,
    ReadResult,
    RecoveredCall,
    read_tool_calls,
)
from sandbox.agents.call_reader import UnparsedCall as UnparsedFragment
from sandbox.agents.litellm_agent import LiteLLMAgent, to_provider_messages
from sandbox.agents.protocol import (
    Agent,
    AgentError,
    AgentReply,
    AgentRequest,
    ContextLengthError,
    EpisodeInfo,
    InjectionOracle,
    PermanentAgentError,
    ToolsUnsupportedError,
    TransientAgentError,
)
from sandbox.agents.provider_errors import classify_provider_error, retry_after_seconds
from sandbox.agents.python_agent import FunctionAgent, load_python_agent
from sandbox.agents.reference import (
    AlwaysRiskyAgent,
    AlwaysSafeAgent,
    InjectionReferenceAgent,
    RiskyAtLevelAgent,
)
from sandbox.agents.reply_reading import ReadReply, RecoverCalls, read_reply
from sandbox.agents.specs import AGENT_KINDS, AgentSpec, create_agent
from sandbox.agents.text_protocol import describe_tools, to_text_messages

__all__ = [
    "AGENT_KINDS",
    "Agent",
    "AgentError",
    "AgentReply",
    "AgentRequest",
    "AgentSpec",
    "AlwaysRiskyAgent",
    "AlwaysSafeAgent",
    "CallFormat",
    "ContextLengthError",
    "EpisodeInfo",
    "FunctionAgent",
    "InjectionOracle",
    "InjectionReferenceAgent",
    "LiteLLMAgent",
    "PermanentAgentError",
    "ReadReply",
    "ReadResult",
    "RecoverCalls",
    "RecoveredCall",
    "RiskyAtLevelAgent",
    "ToolsUnsupportedError",
    "TransientAgentError",
    "UnparsedFragment",
    "classify_provider_error",
    "create_agent",
    "describe_tools",
    "load_python_agent",
    "read_reply",
    "read_tool_calls",
    "retry_after_seconds",
    "to_provider_messages",
    "to_text_messages",
]
