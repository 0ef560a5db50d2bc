"""Merging run directories into one run: the shards of one suite run (`--shard i/N`), and runs
of the same suite with different agents (an agent added to an existing run, for one report).

The merged run is what a single `propensity run` with all the agents would have written, so its
report, `compare` and `--resume` treat it like any other run. That decides the rule:

* **Must be equal** — everything that decides which episodes exist or what one of them
  measures: the suite and the pack's content, the pressure categories, baseline, namings,
  schedule, repeats and seed, the scenario selection (``limit``, ``scenario_ids``), turn and
  tool-call limits, stopping, call reading, code-sandbox limits and environment, judge and
  emulator models. Everything in ``RunConfig`` not listed below. The pack's content is checked
  on the episodes themselves: the system prompt, task and tools recorded at the start of every
  episode of one scenario, category and naming must be the same in every run; and on the pack:
  the runs' recorded pack digests (``input_files``) must match, or, where the packs as recorded
  are still on disk, hold the same scenarios with the same content. One pack at two paths is
  one pack (the suite's path may then differ).
* **May differ** — the agents (the merged run has them all; an agent found in several runs must
  have the same settings there, and those runs must have the same agents: they are shards of
  one run), the shard, and how a run was executed rather than what it measured
  (:data:`EXECUTION_SETTINGS`: concurrency, sandbox pool, episode and call timeouts, retries,
  cache directory). The merged configuration takes those from the first run; each run's own
  configuration is kept in the merged manifest (``merge_sources``).
* **Never twice** — an episode id recorded in two runs is refused, never counted twice. One
  that is only pending in a run (never started there: nothing recorded) is taken from the run
  that has it, so a partial merged run can be merged again with the shard it lacked.

**Complete or said to be partial.** The merged run's episodes are those its configuration
expands to (:func:`~sandbox.runtime.expansion.expand_episodes` over the union of the agents,
no shard), and its ``episodes_total`` is that expansion's size. Every expected episode that
no run holds is journaled as pending, so ``report`` and ``summary.json`` count it as incomplete and
``--resume`` of the merged run runs exactly those; the merge says which, per agent and shard
(``agent X: shard 2/2 missing (N episodes)``), and records them in the manifest
(``missing_at_merge``). An episode of a run that is not one of these is refused (the pack lost
its scenario). A merged run can be a source: its recorded sources are its parts.

The merged manifest's ``merged_from`` lists the source directories; ``merge_sources`` holds one
:class:`MergeSource` per source (its configuration, versions and the episode ids taken from it;
for a source that was itself merged, its own sources), so where every episode came from stays
on record (see :func:`merge_sources`).

The parts, by job: :mod:`~sandbox.results.merge.records` (what the merged manifest keeps of
its sources and of what it lacked), :mod:`~sandbox.results.merge.checks` (the rule: the
settings, the pack's content and the pack each run recorded),
:mod:`~sandbox.results.merge.expected` (the episodes the merged run must hold, and which of
them no source finished), :mod:`~sandbox.results.merge.write` (the merged run written from
the sources' records) and :mod:`~sandbox.results.merge.driver` (:func:`merge_runs`).
"""

from sandbox.results.merge.checks import (
    EXAMPLES,
    EXECUTION_SETTINGS,
    Difference,
    blocking,
    check_mergeable,
    check_same_content,
    check_same_pack,
    config_differences,
)
from sandbox.results.merge.driver import merge_runs
from sandbox.results.merge.records import (
    MERGE_SOURCES_KEY,
    MISSING_KEY,
    MergeError,
    MergeSource,
    MissingPart,
    episode_origins,
    merge_sources,
    missing_at_merge,
)

__all__ = [
    "EXAMPLES",
    "EXECUTION_SETTINGS",
    "MERGE_SOURCES_KEY",
    "MISSING_KEY",
    "Difference",
    "MergeError",
    "MergeSource",
    "MissingPart",
    "blocking",
    "check_mergeable",
    "check_same_content",
    "check_same_pack",
    "config_differences",
    "episode_origins",
    "merge_runs",
    "merge_sources",
    "missing_at_merge",
]
