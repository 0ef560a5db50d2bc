"""The runtime: what runs a suite.

- ``runs``: start and resume a run (run directory, manifest, lock, pack, expansion);
- ``orchestrator``: episodes scheduled with bounded concurrency, journaled, timed out, scored;
- ``kinds``: the ``EpisodeKind`` interface, its registry and the built-in kinds (propensity,
  open, code task), each with its runner and scorer;
- ``expansion``: a suite's episodes, in pack order, sharded; ``config``: ``RunConfig`` and
  ``EpisodeSpec``;
- ``turn_loop``: what every episode shares (agent turns with retries, tool calls, events
  written as they happen); ``retry``: the retry policy; ``services``: what kinds share (judge,
  response cache, local model servers); ``progress``: the console display;
- ``branching``: a branched replay, as a wrapper around the propensity kind's runner.

The public names are re-exported from ``sandbox``.
"""
