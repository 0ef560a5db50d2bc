"""The re-judging of recorded inputs, start to end: judge models reached as a run reaches them
(a ``local/...`` model is served by the shared local server, :class:`RunServices`), the
response cache (or none, to measure a judge's rerun stability), the calls, the progress, and
the run directory written with ``--out``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from evaluators.judges import LLMJudge
from sandbox.agents import AgentSpec
from sandbox.replay.judged_run import write_judged_run
from sandbox.replay.judging import JudgedEpisode, RejudgeResult, rejudge
from sandbox.replay.sources import Recorded
from sandbox.results.summary import RunSummary
from sandbox.runtime.config import RunConfig
from sandbox.runtime.errors import RunError
from sandbox.runtime.services import RunServices, cache_endpoint
from tools.cache import ResponseCache, default_cache_dir

__all__ = ["JudgeModel", "pair_endpoints", "rejudge_records"]

# A (model, api_base) pair as given on the command line.
JudgeModel = tuple[str, str | None]


def pair_endpoints(models: Sequence[str], bases: Sequence[str] | None) -> list[JudgeModel]:
    """Each ``--judge-model`` with its ``--judge-api-base``: none given, one for every model,
    or one per model in the same order."""
    bases = list(bases or [])
    if len(set(models)) != len(models):
        raise RunError(f"a --judge-model is given twice: {list(models)}")
    if not bases:
        return [(m, None) for m in models]
    if len(bases) == 1:
        return [(m, bases[0]) for m in models]
    if len(bases) != len(models):
        raise RunError(
            f"{len(bases)} --judge-api-base for {len(models)} --judge-model: give one for "
            "every model, or one per model in the same order"
        )
    return list(zip(models, bases, strict=True))


async def rejudge_records(
    records: Sequence[Recorded],
    judges: Sequence[JudgeModel],
    *,
    inputs: Sequence[Path],
    concurrency: int = 8,
    timeout_s: float = 120.0,
    use_cache: bool = True,
    cache_dir: Path | None = None,
    out: Path | None = None,
    argv: Sequence[str] | None = None,
    retry_delays: Sequence[float] = (1.0, 4.0),
    temperature: float = 0.0,
    seed: int | None = None,
    on_call: Callable[[], None] = lambda: None,
    on_episode: Callable[[JudgedEpisode], None] = lambda _: None,
) -> tuple[RejudgeResult, RunSummary | None]:
    """Judge ``records`` with every judge model (see :func:`sandbox.replay.judging.rejudge`),
    and write them as a run directory to ``out`` when given. ``temperature`` and ``seed`` are
    the judges' sampling settings (see :class:`evaluators.judges.LLMJudge`): another seed at a
    temperature above 0 re-samples each answer (rerun stability)."""
    started_at = time.time()
    cache = ResponseCache(cache_dir or default_cache_dir()) if use_cache else None
    first = judges[0]
    services = RunServices(
        RunConfig(
            suite="rescore",
            agents=[AgentSpec(spec="recorded")],
            judge_model=first[0],
            judge_api_base=first[1],
            call_timeout_s=timeout_s,
        )
    )
    endpoints: dict[str, str | None] = {}
    try:
        llm_judges: list[LLMJudge] = []
        for model, api_base in judges:
            services.config = services.config.model_copy(update={"judge_model": model})
            services.check()  # an unknown local/ model is refused before any call
            litellm_model, base = await services.endpoint(model, api_base)
            assert litellm_model is not None
            endpoints[litellm_model] = base
            llm_judges.append(
                LLMJudge(
                    litellm_model,
                    api_base=base,
                    cache=cache,
                    timeout_s=timeout_s,
                    on_failure="raise",
                    endpoint_key=cache_endpoint(model, api_base),
                    temperature=temperature,
                    seed=seed,
                )
            )
        result = await rejudge(
            records,
            llm_judges,
            concurrency=concurrency,
            retry_delays=retry_delays,
            on_call=on_call,
            on_episode=on_episode,
        )
    finally:
        await services.close()
    summary = None
    if out is not None:
        summary = write_judged_run(
            out,
            records,
            result,
            inputs=inputs,
            endpoints=endpoints,
            cache=use_cache,
            sampling={"temperature": temperature, "seed": seed},
            started_at=started_at,
            argv=argv,
        )
    return result, summary
