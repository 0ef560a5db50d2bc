"""pytest plugin: a propensity threshold as an ordinary test in an agent's own test suite.

Agent developers change prompts, models and tool wiring often; a propensity regression should
fail their CI the way any other regression does, next to their unit tests, without a separate
harness run to remember. The plugin offers

* the ``propensity_suite`` fixture, a callable that runs a suite against one agent in a fresh
  run directory and fails the test (``pytest.fail``) when the propensity is above a threshold,
  with the per-category table in the failure message; it returns the ``RunSummary`` otherwise,
  for further assertions;
* the ``@pytest.mark.propensity(...)`` marker, which sets the fixture's defaults, and on a test
  that does not request the fixture runs the check by itself, as the first part of the test
  (a failed check is a test failure, and the body does not run).

By default the check is conservative: the *upper* bound of the 95% Wilson interval must not
exceed ``max_propensity``, so a clean result on too few episodes does not pass by luck (the
failure message says how many episodes would be needed). ``confidence="point"`` compares the
observed rate instead.

It is registered by the ``pytest11`` entry point ``propensity``, or explicitly with
``-p sandbox.pytest_plugin`` / ``pytest_plugins = ["sandbox.pytest_plugin"]``. pytest refuses a
module registered under two names, so whichever way registers it first blocks the other name
(see ``pytest_plugin_registered``); both ways can then be used together harmlessly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import re
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evaluators.risky_choice import BASELINE, PropensityBreakdown
from evaluators.stats import Z_95, Estimate
from sandbox.agents.specs import AgentSpec
from sandbox.results.summary import RunSummary
from sandbox.runtime.config import RunConfig
from sandbox.runtime.errors import RunError
from sandbox.runtime.runs import start_run

# The entry point's name and the module's own name: the two names it can be registered under.
PLUGIN_NAMES = ("propensity", "sandbox.pytest_plugin")
MARKER = "propensity"
Confidence = Literal["upper", "point"]
T = TypeVar("T")
_AUTO_CHECK = pytest.StashKey[bool]()


class PropensityCheck(BaseModel):
    """What one propensity test runs and checks (marker arguments and call arguments merged)."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, description="agent spec, e.g. python:mymod:make_agent")
    suite: str = "starter"
    # None: run and return the summary without checking a threshold.
    max_propensity: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: Confidence = "upper"
    # Also hold every pressure category (not only the pooled rate) to the threshold.
    per_category: bool = False
    # Errored episodes are infrastructure failures, not behaviour: by default they fail the
    # test, because the propensity of the episodes that did run may not be representative.
    allow_errors: bool = False
    categories: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    # Any other RunConfig field (repeats, namings, include_baseline, environment, ...).
    config: dict[str, Any] = Field(default_factory=dict)

    def run_config(self) -> RunConfig:
        data: dict[str, Any] = {
            **self.config,
            "suite": self.suite,
            "agents": [AgentSpec(spec=self.agent)],
        }
        if self.categories is not None:
            data["categories"] = self.categories
        if self.limit is not None:
            data["limit"] = self.limit
        return RunConfig.model_validate(data)


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to completion from sync code, also inside an async test's running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _bound(rate: Estimate, confidence: Confidence) -> float | None:
    if rate.value is None or rate.ci is None:
        return None
    return rate.ci[1] if confidence == "upper" else rate.value


def _cell(rate: Estimate) -> str:
    if rate.value is None or rate.ci is None:
        return f"{'–':>10}  {'':14}  {'0/0':>7}"
    interval = f"[{rate.ci[0]:.2f}, {rate.ci[1]:.2f}]"
    return f"{rate.value:>10.2f}  {interval:14}  {f'{rate.k}/{rate.n}':>7}"


def agent_breakdown(summary: RunSummary, agent: str) -> PropensityBreakdown:
    """The checked agent's own propensity (``summary.by_agent``), never a figure pooled over
    other agents; a check's run has one agent, so a label that differs from the spec is that
    one. Falls back to ``summary.propensity`` only for a run without per-agent figures."""
    if agent in summary.by_agent:
        return summary.by_agent[agent]
    if len(summary.by_agent) == 1:
        return next(iter(summary.by_agent.values()))
    return summary.propensity


def summary_text(summary: RunSummary, agent: str | None = None) -> str:
    """The agent's overall and per-category propensity as a plain-text table (for failure
    messages); ``agent`` None: the run's only agent."""
    breakdown = agent_breakdown(summary, agent or "")
    rows = [("overall (pressured)", breakdown.overall)]
    rows += [(name, rate) for name, rate in breakdown.by_category.items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'category':{width}}  {'propensity':>10}  {'95% CI':14}  {'k/n':>7}"]
    lines += [f"{name:{width}}  {_cell(rate)}" for name, rate in rows]
    return "\n".join(lines)


def minimum_episodes(threshold: float) -> int | None:
    """Fewest episodes for which none risky gives a Wilson upper bound at most `threshold`
    (the bound for 0 of n is z²/(n+z²)); None for a threshold of 0, which no n reaches."""
    if threshold <= 0:
        return None
    return max(1, math.ceil(Z_95**2 / threshold - Z_95**2))


def check_summary(
    summary: RunSummary, check: PropensityCheck, run_dir: Path | None = None
) -> str | None:
    """Why the run fails the check (a readable report), or None when it passes."""
    problems: list[str] = []
    if summary.errored and not check.allow_errors:
        reasons = ", ".join(f"{reason} ×{count}" for reason, count in summary.errors.items())
        problems.append(
            f"{summary.errored} episode(s) errored ({reasons}): infrastructure failures, not "
            "behaviour; fix them or pass allow_errors=True"
        )
    breakdown = agent_breakdown(summary, check.agent)
    overall = breakdown.overall
    threshold = check.max_propensity
    if overall.n == 0:
        problems.append("no pressured episode was scored, so there is no propensity to check")
    elif threshold is not None:
        which = "95% upper bound" if check.confidence == "upper" else "observed propensity"
        checked = [("overall", overall)]
        if check.per_category:
            checked += [
                (f"category {name}", rate)
                for name, rate in breakdown.by_category.items()
                if name != BASELINE
            ]
        for name, rate in checked:
            bound = _bound(rate, check.confidence)
            if bound is not None and bound > threshold:
                problems.append(
                    f"{name}: the {which} {bound:.2f} exceeds max_propensity {threshold:.2f}"
                )
        needed = minimum_episodes(threshold)
        if check.confidence == "upper" and needed is not None and overall.n < needed:
            problems.append(
                f"note: with {overall.n} pressured episodes even a propensity of 0 has an upper "
                f"bound above {threshold:.2f}; at least {needed} are needed (raise limit, "
                "categories or repeats, or use confidence='point')"
            )
    if not [p for p in problems if not p.startswith("note:")]:
        return None
    header = (
        f"propensity of {check.agent} on {check.suite}: {overall.render()} "
        f"({summary.scored} episode(s) scored)"
    )
    footer = f"run directory: {run_dir} (propensity report {run_dir})" if run_dir else ""
    table = summary_text(summary, check.agent)
    return "\n".join([header, *problems, "", table, footer]).rstrip()


class PropensitySuite:
    """The ``propensity_suite`` fixture's value: call it to run a suite and check it.

    Arguments given to the call override those of the test's ``propensity`` marker; keyword
    arguments that are not parameters here go to the run configuration (``RunConfig``).
    """

    def __init__(
        self, run_root: pytest.TempPathFactory, defaults: dict[str, Any], name: str = "run"
    ) -> None:
        self._run_root = run_root
        self._defaults = defaults
        self._name = name
        self.run_dirs: list[Path] = []
        self.last_summary: RunSummary | None = None

    def check(self, **overrides: Any) -> PropensityCheck:
        """The check a call with these arguments would run (defaults from the marker)."""
        merged = {k: v for k, v in self._defaults.items() if v is not None}
        config = {**merged.pop("config", {}), **overrides.pop("config", {})}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        fields = set(PropensityCheck.model_fields)
        config.update({k: merged.pop(k) for k in list(merged) if k not in fields})
        if "agent" not in merged:
            pytest.fail(
                "propensity_suite: no agent given (pass agent=... or set it in the "
                "@pytest.mark.propensity marker)",
                pytrace=False,
            )
        try:
            return PropensityCheck.model_validate({**merged, "config": config})
        except ValidationError as exc:
            pytest.fail(f"propensity_suite: invalid arguments: {exc}", pytrace=False)

    def __call__(
        self,
        agent: str | None = None,
        *,
        suite: str | None = None,
        max_propensity: float | None = None,
        confidence: Confidence | None = None,
        per_category: bool | None = None,
        allow_errors: bool | None = None,
        categories: Sequence[str] | None = None,
        limit: int | None = None,
        **config: Any,
    ) -> RunSummary:
        """Run ``suite`` against ``agent``; fail the test if the propensity is too high."""
        check = self.check(
            agent=agent,
            suite=suite,
            max_propensity=max_propensity,
            confidence=confidence,
            per_category=per_category,
            allow_errors=allow_errors,
            categories=[categories] if isinstance(categories, str) else categories,
            limit=limit,
            config=config,
        )
        try:
            run_config = check.run_config()
        except ValidationError as exc:
            pytest.fail(f"propensity_suite: invalid run configuration: {exc}", pytrace=False)
        base = re.sub(r"[^\w.-]+", "_", f"propensity-{self._name}")[:40]
        run_dir = self._run_root.mktemp(base, numbered=True) / "run"
        self.run_dirs.append(run_dir)
        try:
            result = _run_coroutine(start_run(run_config, run_dir, argv=["pytest", self._name]))
        except RunError as exc:
            pytest.fail(f"propensity_suite: the run could not start: {exc}", pytrace=False)
        self.last_summary = result.summary
        failure = check_summary(result.summary, check, run_dir)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        return result.summary


def _marker_defaults(item: pytest.Item) -> dict[str, Any]:
    """Arguments of every `propensity` marker on the test, its class and module: the closest
    wins per argument, so a module can set the suite and threshold and each test its agent."""
    defaults: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers(MARKER))):  # farthest first
        defaults.update(marker.kwargs)
        if marker.args:  # @pytest.mark.propensity("python:mymod:agent", ...)
            defaults["agent"] = marker.args[0]
    return defaults


@pytest.fixture
def propensity_suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PropensitySuite:
    """Run a propensity suite against an agent and fail the test above a threshold."""
    return PropensitySuite(tmp_path_factory, _marker_defaults(request.node), request.node.name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A marked test that does not request the fixture gets it, to run the check itself."""
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker(MARKER) is None:
            continue
        if "propensity_suite" not in item.fixturenames:
            item.fixturenames.append("propensity_suite")
            item.stash[_AUTO_CHECK] = True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Run a marker-only test's check before its body, as part of the test (a failure, not a
    setup error), so the body only runs once the agent passed."""
    if item.stash.get(_AUTO_CHECK, False) and isinstance(item, pytest.Function):
        suite = item.funcargs["propensity_suite"]
        assert isinstance(suite, PropensitySuite)
        suite()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so `--strict-markers` projects can use it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(agent, suite='starter', max_propensity=None, confidence='upper', ...): "
        "run a propensity suite against the agent and fail when its propensity is too high "
        "(sandbox.pytest_plugin; see docs/pytest-plugin.md)",
    )


def pytest_plugin_registered(
    plugin: object, plugin_name: str, manager: pytest.PytestPluginManager
) -> None:
    """Once registered under one name, block the other, so pytest never registers us twice."""
    if plugin is not sys.modules[__name__]:
        return
    for name in PLUGIN_NAMES:
        if name != plugin_name and not manager.is_blocked(name) and not manager.has_plugin(name):
            manager.set_blocked(name)
