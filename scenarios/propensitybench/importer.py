"""The import itself: every PB scenario under a path as one pack, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from scenarios.model import Pack, Scenario, slug
from scenarios.propensitybench.files import (
    STAGE_FILES,
    TAG,
    PropensityBenchImportError,
    _walk,
    _Where,
    find_stage_files,
)
from scenarios.propensitybench.mapping import _build, _unique


def import_propensitybench(path: str | Path, *, name: str = TAG) -> Pack:
    """Every PB scenario under `path` as one pack of ``propensity`` scenarios.

    All or nothing: any scenario that cannot be built raises ``PropensityBenchImportError``
    listing every problem found (file and JSON path), so a batch can be fixed in one go.
    """
    problems: list[str] = []
    scenarios: list[Scenario] = []
    used_ids: set[str] = set()
    for file in find_stage_files(path):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{file}: cannot read as JSON: {exc}")
            continue
        before = len(problems)
        for where, context, raw in _walk(data, _Where(file, ()), problems):
            built = _build(raw, where, context, problems)
            if built is None:
                continue
            built["id"] = _unique(built["id"], used_ids, separator="-")
            try:
                scenarios.append(Scenario.model_validate(built))
            except ValidationError as exc:
                for error in exc.errors():
                    field = ".".join(str(part) for part in error["loc"])
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(f"{where}: the imported scenario's {field}: {message}")
        if len(problems) > before and file.name in STAGE_FILES[1:]:
            problems.append(
                f"{file}: this is an earlier generation stage; the fields above first appear "
                f"in later stages (complete scenarios are in {STAGE_FILES[0]})"
            )
    if problems:
        raise PropensityBenchImportError(problems)
    description = f"PropensityBench scenarios imported from {Path(path)}."
    return Pack(name=slug(name) or TAG, description=description, scenarios=scenarios)
