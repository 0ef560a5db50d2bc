"""Reading recorded trajectories from other harnesses (and our own) into one record type.

Replay starts from what was recorded, so every source is converted into our ``Trajectory``
without inventing anything (:mod:`.common`). Four sources are understood, one module each,
detected from the path and the first record's keys in the order registered here
(:mod:`.registry`):

* our run directories (``manifest.json`` + ``trajectories/``) and single trajectory files
  (:mod:`.runs`);
* ToolEmu dumps (one case per line with ``intermediate_steps``), with the safety and
  helpfulness labels of the sibling ``*_eval_agent_safe.jsonl`` and
  ``*_eval_agent_help_ignore_safety.jsonl`` files joined by ``eval_id`` (= line index)
  (:mod:`.toolemu`);
* PropensityBench result lines (``interaction_response``: the agent's message history), as
  written by ``evaluation/main.py`` of scaleapi/propensity-evaluation (:mod:`.propensitybench`);
* Inspect AI eval logs (``.eval`` and ``.json``), one episode per sample and epoch, read
  through ``inspect_ai``'s own log API (the optional extra ``inspect``) (:mod:`.inspect_logs`).

A new format is one more module and one more :func:`register_reader` call below.
"""

from sandbox.replay.sources.common import (
    LoadResult,
    Recorded,
    RecordedLabels,
    RecordKind,
    ReplaySourceError,
    SourceFormat,
    parse_arguments,
)
from sandbox.replay.sources.inspect_logs import (
    INSPECT_INSTALL_HINT,
    ExportedEpisode,
    branchable_inspect_record,
    detect_inspect,
    read_inspect,
)
from sandbox.replay.sources.propensitybench import (
    PB_MESSAGES_PER_CATEGORY,
    detect_propensitybench,
    read_propensitybench,
)
from sandbox.replay.sources.registry import (
    Companion,
    Reader,
    check_unique,
    detect_format,
    load_recorded,
    read_source,
    read_sources,
    readers,
    register_companion,
    register_reader,
)
from sandbox.replay.sources.runs import (
    detect_run,
    detect_trajectory_file,
    read_run,
    read_trajectory_file,
    run_dir_of,
)
from sandbox.replay.sources.toolemu import (
    LABEL_FILE_PROBLEM,
    detect_toolemu,
    is_label_file,
    read_toolemu,
)

__all__ = [
    "INSPECT_INSTALL_HINT",
    "PB_MESSAGES_PER_CATEGORY",
    "Companion",
    "ExportedEpisode",
    "LoadResult",
    "Reader",
    "RecordKind",
    "Recorded",
    "RecordedLabels",
    "ReplaySourceError",
    "SourceFormat",
    "branchable_inspect_record",
    "check_unique",
    "detect_format",
    "load_recorded",
    "parse_arguments",
    "read_source",
    "read_sources",
    "readers",
    "register_companion",
    "register_reader",
    "run_dir_of",
]

# Detection order (the first claim wins); it is the order of the single-file reader this package
# replaced, and a record matching two formats keeps the format it always had. Inspect logs are
# claimed by suffix (.eval, or a .json whose head is Inspect's) before the JSON-lines formats
# read a first line, which for a one-line .json log would be the whole log.
register_reader(Reader(SourceFormat.RUN, detect_run, read_run))
register_reader(
    Reader(SourceFormat.INSPECT, detect_inspect, read_inspect, suffixes=(".eval", ".json"))
)
register_reader(
    Reader(
        SourceFormat.TOOLEMU,
        detect_toolemu,
        read_toolemu,
        expects="a ToolEmu dump line with intermediate_steps",
    )
)
register_reader(
    Reader(
        SourceFormat.PROPENSITYBENCH,
        detect_propensitybench,
        read_propensitybench,
        expects="a PropensityBench result with interaction_response",
    )
)
register_companion(Companion(is_label_file, LABEL_FILE_PROBLEM))
register_reader(
    Reader(
        SourceFormat.TRAJECTORY,
        detect_trajectory_file,
        read_trajectory_file,
        expects="a trajectory event",
    )
)
