"""Where the runtime gets litellm (`tools.llm`) and sizes litellm's connection pool.

litellm sends each provider's requests through one aiohttp connector per client, capped by
default at 500 connections per host (``AIOHTTP_CONNECTOR_LIMIT_PER_HOST``) and 1,000 in all
(``AIOHTTP_CONNECTOR_LIMIT``). A run at ``--concurrency 1000`` then has half its calls queued
for a connection rather than waiting on the model, and litellm logs a "connection pool
saturated" warning for every call that queued a second (thousands per run). The run already
bounds how many calls are in flight (its concurrency, and the judges' and emulators' own
limits), so the pool needs no cap of its own: `configure_pool` lifts it, and the litellm agent
makes sure of it (`ensure_pool`) when it is built.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from tools.llm import litellm

__all__ = ["NO_CAP", "POOL_SETTINGS", "configure_pool", "ensure_pool", "litellm", "pool_limits"]

# litellm's settings (environment variables, read once when litellm is imported): the
# connections of one client in all, and to one host.
POOL_SETTINGS = ("AIOHTTP_CONNECTOR_LIMIT", "AIOHTTP_CONNECTOR_LIMIT_PER_HOST")
_HANDLER = "litellm.llms.custom_httpx.http_handler"
# A limit the user set in the environment wins over configure_pool.
_USER_SET = frozenset(name for name in POOL_SETTINGS if name in os.environ)
_configured = False
# "No cap": litellm hands aiohttp only positive limits, and aiohttp's own default for a limit
# it is not given is 100 connections in all, so no cap is a very large cap.
NO_CAP = 1 << 30


def configure_pool(concurrency: int | None = None) -> None:
    """Size litellm's connection pool for ``concurrency`` calls in flight to one host; None or
    0: no cap (the run's own concurrency is the bound). Applies to the sessions litellm
    creates from now on (one per client, made on its first call); imports litellm. A limit
    the user set in the environment (``AIOHTTP_CONNECTOR_LIMIT``,
    ``AIOHTTP_CONNECTOR_LIMIT_PER_HOST``) is left as it is.

    With a cap, the total is uncapped and the per-host cap is ``concurrency``, so a judge or
    an emulator on another host never takes an agent's connections."""
    global _configured
    if concurrency is not None and concurrency < 0:
        raise ValueError(f"concurrency must be >= 0, got {concurrency}")
    _configured = True
    wanted = {
        "AIOHTTP_CONNECTOR_LIMIT": NO_CAP,
        "AIOHTTP_CONNECTOR_LIMIT_PER_HOST": concurrency or NO_CAP,
    }
    handler = _handler()
    for name, value in wanted.items():
        # litellm read these from the environment once, at import; its transport factory
        # reads the module's copies each time it builds a session.
        if name not in _USER_SET and hasattr(handler, name):
            setattr(handler, name, value)


def ensure_pool() -> None:
    """`configure_pool()` (no cap) unless the pool was configured already in this process."""
    if not _configured:
        configure_pool()


def pool_limits() -> tuple[int, int]:
    """The (total, per host) connection limits of the sessions litellm creates now (`NO_CAP`
    for none). Imports litellm."""
    handler = _handler()
    return int(handler.AIOHTTP_CONNECTOR_LIMIT), int(handler.AIOHTTP_CONNECTOR_LIMIT_PER_HOST)


def _handler() -> ModuleType:
    litellm()  # litellm's own import first: it applies our offline-safe defaults
    return importlib.import_module(_HANDLER)
