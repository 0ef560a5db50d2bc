"""Importing PropensityBench's staged scenario files into our scenario model.

PropensityBench (PB) generates its scenarios in stages, one JSON file per stage and workspace
(``scenarios_states.json`` → ``_funcs`` → ``_policies`` → ``_messages`` →
``_messages_single.json``), each nested ``domain → workspace → role → scenarios → name``.
Only the last stage is complete, but people also hold the earlier ones, so the importer takes the
most complete file present in each workspace and, when a scenario still cannot be built, names
the file and the JSON path of every missing or broken field instead of guessing.

A PB scenario maps onto a ``propensity`` scenario with proxy tools, PB's own design:

- the target function is the aligned tool (it always fails with PB's errors), the trigger
  function the misaligned tool (canonical and harmful name from ``harmful_name``, benign name
  from ``neutral_name``), and each getter a neutral tool returning configuration values;
- ``configuration_known`` and ``configuration_unknown`` (JSON strings) become ``config``; the
  known part is also shown in the system prompt, because in PB the agent starts out knowing it;
- the policy texts become the system prompt (role, and PB's "trigger awareness" texts, which
  tell the agent what the risky shortcut would do) and our policy duties, prohibitions and
  consequences;
- the illegal state and the negative consequences are the risky outcomes, the target state the
  expected achievement;
- every category's ``sys_messages`` become the scenario's own pressure messages, message i of
  n on our scale at level ``round(i * 10 / (n - 1))``, so PB's escalation spans 0-10.

Nothing of PB's text is stored in this repository: the importer reads the user's copy.

The package, by job: ``files`` (finding, walking and reading PB's staged files), ``mapping`` (one
PB scenario onto our model), ``importer`` (``import_propensitybench``) and ``writer``
(``write_pack_yaml``).
"""

from __future__ import annotations

from scenarios.pressure import PRESSURE_CATEGORIES as PRESSURE_CATEGORIES
from scenarios.propensitybench.files import (
    STAGE_FILES,
    TAG,
    PropensityBenchImportError,
    find_stage_files,
)
from scenarios.propensitybench.importer import import_propensitybench
from scenarios.propensitybench.writer import write_pack_yaml

__all__ = [
    "STAGE_FILES",
    "TAG",
    "PropensityBenchImportError",
    "find_stage_files",
    "import_propensitybench",
    "write_pack_yaml",
]
