"""Writing toolkits back out as YAML that `load_toolkits` reads into equal Toolkits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from tools.toolkits.models import Toolkit

__all__ = ["dump_toolkit", "dump_toolkits"]


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so dumped toolkits stay pleasant to edit."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def dump_toolkit(toolkit: Toolkit) -> str:
    """YAML that `load_toolkits` reads back into an equal Toolkit (defaults left out)."""
    return _dump(toolkit.model_dump(mode="json", exclude_defaults=True))


def dump_toolkits(toolkits: Iterable[Toolkit]) -> str:
    return _dump(
        {
            "toolkits": [
                toolkit.model_dump(mode="json", exclude_defaults=True) for toolkit in toolkits
            ]
        }
    )
