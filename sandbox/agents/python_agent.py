"""Agents written as plain Python, loaded from `module:callable`.

Users wrap their own agent stack this way. The target may be an object with `act` (and maybe
`aclose`), a class or a function taking no parameters that returns one (called once per run),
or a function taking an AgentRequest and returning an AgentReply, a Message, a dict of Message
fields, or a string. Synchronous functions and methods run in a worker thread so they cannot
stall the event loop that drives every other episode. As with `python -m`, the current directory is
importable, so `python:my_agents:agent` finds `./my_agents.py`. See docs/agents.md.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from sandbox.agents.protocol import Agent, AgentReply, AgentRequest, PermanentAgentError
from sandbox.import_path import make_cwd_importable
from scenarios.records import Message


def _as_reply(value: Any) -> AgentReply:
    if isinstance(value, AgentReply):
        return value
    if isinstance(value, Message):
        return AgentReply(message=value)
    if isinstance(value, str):
        return AgentReply(message=Message(role="assistant", content=value))
    if isinstance(value, dict):
        return AgentReply(message=Message.model_validate({"role": "assistant", **value}))
    raise TypeError(
        f"a python agent must return AgentReply, Message, dict or str, not {type(value).__name__}"
    )


class FunctionAgent:
    def __init__(self, name: str, function: Callable[[AgentRequest], Any]) -> None:
        self.name = name
        self._function = function
        self._is_async = inspect.iscoroutinefunction(function)

    async def act(self, request: AgentRequest) -> AgentReply:
        if self._is_async:
            value = await self._function(request)
        else:
            value = await asyncio.to_thread(self._function, request)
            if inspect.isawaitable(value):  # e.g. an object with `async def __call__`
                value = await value
        return _as_reply(value)

    async def aclose(self) -> None:
        return None


class ObjectAgent(FunctionAgent):
    """A user object with `act` (and maybe `aclose`), its replies coerced like a function's."""

    def __init__(self, name: str, obj: Any) -> None:
        super().__init__(getattr(obj, "name", None) or name, obj.act)
        self._obj = obj

    async def aclose(self) -> None:
        close = getattr(self._obj, "aclose", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result


def _takes_no_parameters(obj: Any) -> bool:
    """A plain function with no parameters at all: a factory of the agent, not the agent."""
    if not inspect.isfunction(obj):
        return False
    return not inspect.signature(obj).parameters


def load_python_agent(target: str) -> Agent:
    """`module:callable` (the `python:` prefix already removed); the module is looked up on
    the import path with the current directory first, as `python -m` does."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise PermanentAgentError(f"python agent spec must be module:callable, got {target!r}")
    make_cwd_importable()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PermanentAgentError(
            f"cannot import {module_name!r}: {exc} (the current directory is importable; a "
            "module elsewhere needs PYTHONPATH or installing)"
        ) from exc
    except Exception as exc:  # the module itself failed while being imported
        raise PermanentAgentError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        obj: Any = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise PermanentAgentError(f"{module_name!r} has no attribute {attribute!r}") from None
    name = f"python:{target}"
    if inspect.isclass(obj) or _takes_no_parameters(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise PermanentAgentError(
                f"creating the agent {target!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    if hasattr(obj, "act") and callable(obj.act):
        return ObjectAgent(name, obj)
    if callable(obj):
        return FunctionAgent(name, obj)
    raise PermanentAgentError(f"{target!r} is neither an agent nor a callable")
