"""Writing a pack as a pack directory of YAML files that our loader reads back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from scenarios.loader import PACK_META_FILE
from scenarios.model import Pack


def write_pack_yaml(pack: Pack, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write `pack` as a pack directory our loader reads back: ``pack.yaml`` and one YAML file
    per scenario, named after its id. Returns the files written.

    Refuses a non-empty `out_dir` unless `overwrite`, because the loader reads every YAML file
    in a pack directory and stray scenarios would silently join the pack.
    """
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} is not empty (pass overwrite=True to write into it)")
    root.mkdir(parents=True, exist_ok=True)
    meta = {"name": pack.name, "description": pack.description, "version": pack.version}
    written = [root / PACK_META_FILE]
    written[0].write_text(_dump(meta), encoding="utf-8")
    for scenario in pack.scenarios:
        file = root / f"{scenario.id}.yaml"
        data = scenario.model_dump(mode="json", exclude_defaults=True)
        data = {"id": scenario.id, **data}  # the id first: it is what people look for
        file.write_text(_dump(data), encoding="utf-8")
        written.append(file)
    return written


class _Dumper(yaml.SafeDumper):
    """Writes multi-line texts as literal blocks, so the files read like hand-written packs."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    if "\n" in text and not re.search(r"[ \t]\n|\n[ \t]*\Z", text):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
