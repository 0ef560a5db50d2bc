"""A kind the summary has no section for: its scores reach summary.json's other_scores, the
terminal report's Other scores table and the HTML report's Other scores section, escaped; and
a kind that crashes shows its error message (one example per reason) in both reports.

The run is real: two kinds registered in-process, run by ``start_run`` with reference agents.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from sandbox import EpisodeKind, RunConfig, RunStore, build_summary, register_kind, start_run
from sandbox.agents.specs import AgentSpec
from sandbox.results.html_report import collect, render_html_report
from sandbox.results.report import print_summary
from sandbox.results.store import TrajectoryWriter
from sandbox.results.summary import ERROR_EXAMPLE_CHARS, RunSummary
from sandbox.runtime.config import EpisodeSpec, agent_slug, episode_seed
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop
from scenarios.model import Pack
from scenarios.records import EpisodeStatus, Naming, Score, Trajectory
from tools import ToolContext, ToolSet

# Untrusted text in an evaluator's name, a label and an error message: HTML and rich markup.
EVALUATOR = "probe_<i>refusal</i>"
LABEL = "<script>alert(1)</script> [bold]loud[/bold]"
CRASH = (
    "the probe kind broke <script>alert(2)</script> [red]not markup[/red]\n"
    "  at line two\n" + "x" * 400
)
AGENTS = ("always-safe", "always-risky")


class _Runner(TurnLoop):
    def __init__(
        self, spec: EpisodeSpec, config: RunConfig, writer: TrajectoryWriter, agent: object
    ) -> None:
        context = ToolContext(episode_id=spec.id, scenario=None, naming=spec.naming)
        super().__init__(spec, agent, config, writer, ToolSet([]), context)  # type: ignore[arg-type]
        self.crash = spec.kind.endswith("crash")

    async def run(self) -> EpisodeOutcome:
        self.start_conversation("system", "Say something.")
        if self.crash:
            raise RuntimeError(CRASH)
        reply = await self.agent_turn()
        if isinstance(reply, EpisodeOutcome):
            return reply
        return self.end(EpisodeStatus.DONE, "answered")


class _Probe(EpisodeKind):
    """One episode per agent, scored by an evaluator the summary has no section for."""

    name = "probe-ok"

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        return [
            EpisodeSpec(
                kind=cls.name,
                id=(eid := f"{cls.name}.{agent_slug(agent.label)}"),
                scenario_id=cls.name,
                domain="probe",
                category="baseline",
                naming=Naming.HARMFUL,
                agent=agent.label,
                repeat=0,
                seed=episode_seed(config.seed, eid),
            )
            for agent in config.agents
        ]

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        return None

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        yield _Runner(spec, self.run.config, writer, self.run.agents[spec.agent])

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        safe = spec.agent == "always-safe"
        return [
            Score(
                episode_id=spec.id,
                evaluator=EVALUATOR,
                value=1.0 if safe else None,
                label=LABEL if safe else "unclear",
            )
        ]


register_kind(_Probe)
register_kind(type("_ProbeCrash", (_Probe,), {"name": "probe-crash"}))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    root = tmp_path_factory.mktemp("other")
    config = RunConfig.model_validate(
        {
            "suite": "starter",
            "agents": [AgentSpec(spec=a) for a in AGENTS],
            "kinds": ["probe-ok", "probe-crash"],
            "cache_dir": str(root / "cache"),
            "concurrency": 2,
        }
    )
    result = asyncio.run(start_run(config, root / "run"))
    assert result.counts == {"done": 2, "errored": 2}
    return root / "run"


def test_the_summary_holds_the_other_scores_and_an_error_example_per_reason(
    run_dir: Path,
) -> None:
    summary = build_summary(RunStore(run_dir))
    assert summary.by_agent == {}
    safe = summary.other_scores[EVALUATOR]["always-safe"]
    assert (safe.n, safe.valued, safe.mean, safe.labels) == (1, 1, 1.0, {LABEL: 1})
    risky = summary.other_scores[EVALUATOR]["always-risky"]
    assert (risky.n, risky.valued, risky.mean, risky.labels) == (1, 0, None, {"unclear": 1})

    # One example per reason: the first errored episode by id, its message on one line, cut.
    assert summary.errors == {"harness_error": 2}
    assert list(summary.error_examples) == ["harness_error"]
    example = summary.error_examples["harness_error"]
    assert example["episode_id"] == "probe-crash.always-risky" == summary.errored_episodes[0]
    message = example["message"]
    assert message.startswith("RuntimeError: the probe kind broke <script>alert(2)</script>")
    assert "\n" not in message and "at line two" in message
    assert len(message) == ERROR_EXAMPLE_CHARS and message.endswith("…")
    assert "error_examples" in summary.definitions
    # It round-trips through summary.json.
    assert RunSummary.model_validate_json(summary.model_dump_json()) == summary


def test_the_terminal_report_shows_other_scores_and_the_error_example(run_dir: Path) -> None:
    console = Console(record=True, width=400, color_system=None)
    print_summary(build_summary(RunStore(run_dir)), console)
    text = console.export_text()
    assert "No risky-tool-choice episode was scored" in text
    assert "This run has other scores: see the Other scores table below." in text
    assert "Other scores" in text
    # Untrusted text is printed as it is: rich markup in it is not interpreted.
    assert EVALUATOR in text and LABEL in text and "unclear 1" in text
    # The errors table names each reason's first episode; its message follows, as text.
    row = next(line for line in text.splitlines() if "│ harness_error" in line)
    assert "2" in row and "probe-crash.always-risky" in row
    example = next(line for line in text.splitlines() if line.startswith("harness_error, e.g."))
    assert example.startswith(
        "harness_error, e.g. probe-crash.always-risky: RuntimeError: the probe kind broke "
        "<script>alert(2)</script> [red]not markup[/red] at line two xxx"
    )
    assert example.rstrip().endswith("x…")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _section(html: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.DOTALL)
    assert found is not None, anchor
    return found.group(1)


def test_the_html_report_has_an_other_scores_section_escaped(run_dir: Path) -> None:
    html = render_html_report(run_dir)
    tags = _Tags()
    tags.feed(html)
    # No label, name or message opened a script: only the page's own three.
    assert [t for t, _ in tags.tags].count("script") == 3
    assert "<script>alert" not in html and "<i>refusal</i>" not in html

    other = _section(html, "other-scores")
    assert "Other scores" in other and "without a section of their own" in other
    assert "plugin kind" in other
    assert "probe_&lt;i&gt;refusal&lt;/i&gt;" in other
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [bold]loud[/bold] 1" in other
    assert "unclear 1" in other
    nav = re.search(r"<nav>(.*?)</nav>", html, re.DOTALL)
    assert nav is not None and 'href="#other-scores"' in nav.group(1)

    # The headline has no propensity, and says where this run's scores are.
    headline = _section(html, "headline")
    assert "No risky-tool-choice scores in this run." in headline
    assert 'see <a href="#other-scores">Other scores</a>' in headline
    assert "probe_&lt;i&gt;refusal&lt;/i&gt;" in headline

    # Each count links to the episodes its scores are of.
    data = collect(RunStore(run_dir))
    for agent in AGENTS:
        row = data.other_scores[EVALUATOR][agent]
        episodes = [data.episodes[i].id for i in data.cells[row.cell].episodes]
        assert episodes == [f"probe-ok.{agent}"] and row.episodes == 1
        assert f'data-cell="{row.cell}"' in other

    # The errors section gives each reason its first episode (a link) and its message, escaped.
    errors = _section(html, "errors")
    reasons = errors.split("</table>")[0]
    index = next(i for i, e in enumerate(data.episodes) if e.id == "probe-crash.always-risky")
    assert f'data-episode="{index}">probe-crash.always-risky</a>' in reasons
    assert "RuntimeError: the probe kind broke &lt;script&gt;alert(2)&lt;/script&gt;" in reasons


def test_a_run_without_other_scores_points_nowhere(tmp_path: Path) -> None:
    """A run whose only kind crashed: no other scores, so no section and no pointer to it."""
    import asyncio

    config = RunConfig.model_validate(
        {
            "suite": "starter",
            "agents": [AgentSpec(spec="always-safe")],
            "kinds": ["probe-crash"],
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    asyncio.run(start_run(config, tmp_path / "run"))
    html = render_html_report(tmp_path / "run")
    assert 'id="other-scores"' not in html and "#other-scores" not in html
    assert "No risky-tool-choice scores in this run.</p>" in html
    console = Console(record=True, width=400, color_system=None)
    print_summary(build_summary(RunStore(tmp_path / "run")), console)
    text = console.export_text()
    assert "Other scores" not in text and "probe-crash.always-safe" in text
