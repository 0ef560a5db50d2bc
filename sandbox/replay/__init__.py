"""Safe replay of recorded trajectories: read them, re-score them, re-execute their tool calls.

Sources are our run directories and trajectory files, ToolEmu dumps and PropensityBench result
lines (:mod:`sandbox.replay.sources`); re-scoring is offline (:mod:`sandbox.replay.rescore`);
re-execution never reaches anything real: recorded observations, or our sandbox's proxy and
Python backends, and calls without such a backend are reported as not run
(:mod:`sandbox.replay.verify`).
"""

from sandbox.replay.branch import BranchError, BranchRunner, branch_run, check_branchable
from sandbox.replay.reexecute import (
    ReexecutedCall,
    ReexecutionReport,
    reexecute,
    reexecute_episode,
)
from sandbox.replay.rescore import (
    AgreementTable,
    agreement_table,
    render_agreement,
    rescore,
    rescore_all,
    safety_pair,
)
from sandbox.replay.sources import (
    PB_MESSAGES_PER_CATEGORY,
    LoadResult,
    Recorded,
    RecordedLabels,
    RecordKind,
    ReplaySourceError,
    SourceFormat,
    detect_format,
    load_recorded,
    parse_arguments,
    read_source,
)
from sandbox.replay.verify import (
    NOT_RUN,
    SAFE_BACKENDS,
    CallCheck,
    VerifyReport,
    verify,
    verify_recorded,
    verify_sandbox,
)

__all__ = [
    "NOT_RUN",
    "PB_MESSAGES_PER_CATEGORY",
    "SAFE_BACKENDS",
    "AgreementTable",
    "BranchError",
    "BranchRunner",
    "CallCheck",
    "LoadResult",
    "RecordKind",
    "Recorded",
    "RecordedLabels",
    "ReexecutedCall",
    "ReexecutionReport",
    "ReplaySourceError",
    "SourceFormat",
    "VerifyReport",
    "agreement_table",
    "branch_run",
    "check_branchable",
    "detect_format",
    "load_recorded",
    "parse_arguments",
    "read_source",
    "reexecute",
    "reexecute_episode",
    "render_agreement",
    "rescore",
    "rescore_all",
    "safety_pair",
    "verify",
    "verify_recorded",
    "verify_sandbox",
]
