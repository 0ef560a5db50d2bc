"""Retrying provider calls with exponential backoff and jitter.

Only failures that are not the agent's behaviour are retried (AgentError subclasses marked
retryable, and the per-call timeout). Each failed attempt is reported through a callback so the
trajectory shows exactly what the provider did. A provider's Retry-After (seconds or an HTTP
date, carried on ``TransientAgentError.retry_after_s``) is honoured: the wait is the longer of
it and the backoff, capped by the call timeout.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sandbox.agents.protocol import AgentError, TransientAgentError
from sandbox.runtime.config import RetryPolicy

T = TypeVar("T")
OnError = Callable[[AgentError, int, bool], None]


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Equal jitter: half the exponential delay fixed, half random, so retries spread out."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    rng: random.Random,
    error: AgentError,
    *,
    timeout_s: float,
) -> float:
    """Seconds to wait before the next attempt: the backoff, or the provider's Retry-After
    when that is longer, never more than the call timeout (a wait longer than one call may
    take is a hang in another form)."""
    delay = backoff_delay(policy, attempt, rng)
    hint = getattr(error, "retry_after_s", None)
    if isinstance(hint, int | float) and hint > delay:
        delay = float(hint)
    return min(delay, timeout_s)


async def call_with_retries(
    make_call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    timeout_s: float,
    on_error: OnError,
    rng: random.Random,
) -> tuple[T, int]:
    attempt = 0
    while True:
        attempt += 1
        try:
            async with asyncio.timeout(timeout_s):
                return await make_call(), attempt
        except TimeoutError:
            error: AgentError = TransientAgentError(f"no reply within {timeout_s:g} s")
        except AgentError as exc:
            error = exc
        will_retry = error.retryable and attempt < policy.max_attempts
        on_error(error, attempt, will_retry)
        if not will_retry:
            raise error
        await asyncio.sleep(retry_delay(policy, attempt, rng, error, timeout_s=timeout_s))
