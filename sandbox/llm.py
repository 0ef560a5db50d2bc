"""Re-export of `tools.llm` (kept so the runtime has one obvious place to get litellm from)."""

from tools.llm import litellm

__all__ = ["litellm"]
