"""Facts that make a run reproducible: package versions, git revision, interpreter, platform."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = (
    "propensity-sandbox",
    "litellm",
    "pydantic",
    "openai",
    "docker",
    "networkx",
    "rich",
    "jsonschema",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(start: Path | None = None) -> str | None:
    """The project's git revision when running from a checkout (None when installed)."""
    where = start or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = out.stdout.strip()
    if out.returncode != 0 or not revision:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return revision + ("-dirty" if dirty.stdout.strip() else "")


def interpreter() -> tuple[str, str]:
    return sys.version.split()[0], platform.platform()
