"""User code a run depends on: plugins loaded, recorded in the run's manifest, loaded again.

Installed packages advertise toolkits through the `propensity.tools` entry point; modules that
are not installed (a folder of your own toolkits) are named with `--plugin MODULE` or in
PROPENSITY_PLUGINS (comma-separated). Importing a module is what registers its toolkits. As with
`python -m`, the current directory is importable for these modules and for `python:` agents.

A run records what it imported in its manifest (`user_modules`): every plugin named, the module
of every Python toolkit its scenarios use that is not one of ours (an entry point's, or one
registered in-process), and the module of every `python:module:attr` agent, each with the
directory it was imported from, its file, version and sha256 (and, for a module of a
package, the digest of every .py file of its top-level package). It records the files it read
(`input_files`: the pack, toolkit specs) with their sha256 too. The commands that rebuild the
run's tools or agents (`--resume`, `replay verify --against sandbox`, `replay branch`; `merge`,
which loads the pack) import the recorded modules again from the same place
(`restore_user_modules`): a module that cannot be imported is one clear error naming it and the
manifest, and one whose files changed since the run is a warning, as is a changed input file.
`report` and the other replay modes import none.

A manifest is data written by whoever made the run. Code is never imported from inside the
run directory being read: before each package on the way to a recorded module is executed,
where Python would import it from is found without executing anything (the finders of
``sys.meta_path``, given the parent package's real search path), and a location inside the run
directory is refused, whatever ``root``/``file`` the manifest claims (``_import_guarded``).

The parts, by job: :mod:`~sandbox.plugins.loading` (``--plugin`` and PROPENSITY_PLUGINS
imported), :mod:`~sandbox.plugins.recording` (what a run imported and read, for its
manifest), :mod:`~sandbox.plugins.guard` (a recorded module imported again, never from
inside the run directory being read) and :mod:`~sandbox.plugins.restoring` (a run's recorded
modules imported again, and what changed since). The records themselves are
:mod:`sandbox.run_inputs` and the current directory on the import path
:mod:`sandbox.import_path`: the store and the agents import those without this package.
"""

from sandbox.import_path import make_cwd_importable
from sandbox.plugins.loading import ENV_VAR, PluginError, load_plugins, named_plugins
from sandbox.plugins.recording import (
    describe_module,
    path_sha256,
    run_input_files,
    run_user_modules,
)
from sandbox.plugins.restoring import (
    ALL_ROLES,
    TOOL_ROLES,
    check_input_files,
    differing_run_inputs,
    restore_run_inputs,
    restore_user_modules,
    with_agent_modules,
)
from sandbox.run_inputs import InputFile, ModuleRole, UserModule

__all__ = [
    "ALL_ROLES",
    "ENV_VAR",
    "TOOL_ROLES",
    "InputFile",
    "ModuleRole",
    "PluginError",
    "UserModule",
    "check_input_files",
    "describe_module",
    "differing_run_inputs",
    "load_plugins",
    "make_cwd_importable",
    "named_plugins",
    "path_sha256",
    "restore_run_inputs",
    "restore_user_modules",
    "run_input_files",
    "run_user_modules",
    "with_agent_modules",
]
