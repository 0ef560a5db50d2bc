"""The records of a run's inputs beyond its configuration, as the manifest keeps them.

``UserModule``: a module of user code the run imported (a plugin, a toolkit module, a
``python:`` agent) and where it came from; ``InputFile``: a file or directory whose content
changes the run's behaviour (the pack, toolkit specs). ``sandbox.plugins`` records and restores
them; ``sandbox.results.store.Manifest`` holds them. Records only, so the store needs no
import of the plugin machinery.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ModuleRole = Literal["plugin", "toolkit", "agent"]


class UserModule(BaseModel):
    """One module of user code a run imported, and where it came from (in the manifest)."""

    model_config = ConfigDict(extra="allow")

    module: str
    # plugin: named with --plugin or PROPENSITY_PLUGINS; toolkit: defines a Python toolkit the
    # pack uses (entry point or in-process registration); agent: a python:module:attr agent.
    role: ModuleRole
    # How it was named: "--plugin", "PROPENSITY_PLUGINS", "python:my_agents:agent", "toolkit X".
    given_as: str = ""
    file: str | None = None
    # The import-path directory it was found under (the run's cwd, a PYTHONPATH entry, ...).
    root: str | None = None
    # Of the file, or of every .py file of a package's directory.
    sha256: str | None = None
    version: str | None = None
    # A module of a package (or a package): its top-level package's directory, the digest of
    # every .py file under it (a helper module the plugin imports changes it too) and, for a
    # package of at most _MAX_LISTED_FILES files, each file's own sha256 (to name what changed).
    # Absent from manifests written before; then only ``sha256`` is compared.
    package: str | None = None
    package_sha256: str | None = None
    package_files: dict[str, str] = Field(default_factory=dict)
    # Toolkits it defines that the run used: toolkit name -> class qualname in the module.
    toolkits: dict[str, str] = Field(default_factory=dict)


class InputFile(BaseModel):
    """A file or directory a run read whose content changes its behaviour (in the manifest)."""

    model_config = ConfigDict(extra="allow")

    role: str  # "pack" or "toolkit spec"
    path: str
    sha256: str | None = None  # None: it could not be read
    files: int = 0
