"""The local model's OpenAI-compatible server (run as ``python -m sandbox.local_model.server``).

It is llama-cpp-python's own server with one addition: a chat handler that renders the model's
own template (tools included; see ``sandbox.local_model.chat``) and returns the model's text
exactly as written. The harness reads the tool calls in that text with the same call reader
it uses for every agent (``sandbox.agents.call_reader``), so each call records the format it
was written in and call-shaped text that cannot be read is flagged, never dropped. It runs in
its own process so model loading and inference never block the harness's event loop, and it
listens on 127.0.0.1 only.

It has one evaluation slot, which keeps the evaluated prompt of the last request: a
conversation's next turn then only evaluates its new tokens. Prompt evaluation is the slow
part on CPU (about 130 tokens/s for the 0.5B model on two cores), so episodes against a local
model are best run one at a time (``--concurrency 1``); llama-cpp-python's RAM prompt cache was
measured slower here (its state copies cost more than they save).
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

HANDLER_NAME = "propensity-template-tools"
DEFAULT_MAX_TOKENS = 512


@functools.lru_cache(maxsize=4)
def _formatter(template: str, eos_token: str) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token="")


def _eos(llama: Any) -> str:
    eos_id = llama.token_eos()
    return str(llama.detokenize([eos_id], special=True).decode("utf-8", "replace"))


def template_chat_handler(
    *,
    llama: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    temperature: float = 0.2,
    top_p: float = 0.95,
    top_k: int = 40,
    min_p: float = 0.05,
    stream: bool = False,
    stop: str | list[str] | None = None,
    seed: int | None = None,
    response_format: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
    repeat_penalty: float = 1.1,
    model: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    from sandbox.local_model.chat import template_messages, tool_names

    if stream:
        raise ValueError("streaming is not supported by this server; request stream=false")
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("the model file carries no chat template")
    eos = _eos(llama)
    offered = tool_names(tools) if tool_choice != "none" else set()
    prompt = _formatter(template, eos)(
        messages=template_messages(messages), tools=tools if offered else None
    ).prompt
    grammar = None
    if not offered and response_format and response_format.get("type") == "json_object":
        grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    stops = [eos, "<|endoftext|>", *([stop] if isinstance(stop, str) else stop or [])]
    completion: dict[str, Any] = llama.create_completion(
        prompt=prompt,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        stop=stops,
        seed=seed,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
        repeat_penalty=repeat_penalty,
        grammar=grammar,
        model=model,
    )
    choice = completion["choices"][0]
    # The model's text exactly as written: the harness's call reader finds the calls in it
    # (tagged, fenced, bare JSON, ...) and records how each was written.
    message: dict[str, Any] = {"role": "assistant", "content": choice["text"]}
    return {
        "id": "chat" + completion["id"],
        "object": "chat.completion",
        "created": completion.get("created", int(time.time())),
        "model": completion.get("model", model or ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
        ],
        "usage": completion["usage"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="verified GGUF file")
    parser.add_argument("--alias", required=True, help="model name clients ask for")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import uvicorn
    from llama_cpp.llama_chat_format import register_chat_completion_handler
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    register_chat_completion_handler(HANDLER_NAME)(template_chat_handler)
    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=args.port),
        model_settings=[
            ModelSettings(
                model=args.model,
                model_alias=args.alias,
                chat_format=HANDLER_NAME,
                n_ctx=args.n_ctx,
                n_threads=args.threads,
                n_threads_batch=args.threads,
                verbose=False,
            )
        ],
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
