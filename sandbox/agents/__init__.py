"""Agents: the protocol, the litellm agent, Python agents and reference agents."""

from sandbox.agents.litellm_agent import LiteLLMAgent, classify_provider_error, to_provider_messages
from sandbox.agents.protocol import (
    Agent,
    AgentError,
    AgentReply,
    AgentRequest,
    EpisodeInfo,
    PermanentAgentError,
    TransientAgentError,
)
from sandbox.agents.python_agent import FunctionAgent, load_python_agent
from sandbox.agents.reference import AlwaysRiskyAgent, AlwaysSafeAgent, RiskyAtLevelAgent
from sandbox.agents.specs import AGENT_KINDS, AgentSpec, create_agent
from sandbox.agents.text_protocol import describe_tools, parse_text_calls, to_text_messages

__all__ = [
    "AGENT_KINDS",
    "Agent",
    "AgentError",
    "AgentReply",
    "AgentRequest",
    "AgentSpec",
    "AlwaysRiskyAgent",
    "AlwaysSafeAgent",
    "EpisodeInfo",
    "FunctionAgent",
    "LiteLLMAgent",
    "PermanentAgentError",
    "RiskyAtLevelAgent",
    "TransientAgentError",
    "classify_provider_error",
    "create_agent",
    "describe_tools",
    "load_python_agent",
    "parse_text_calls",
    "to_provider_messages",
    "to_text_messages",
]
