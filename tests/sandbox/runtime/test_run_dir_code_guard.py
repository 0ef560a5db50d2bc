"""Reading a run directory someone else wrote never executes code it ships.

A manifest names user code (`user_modules`, `python:` agents), and whoever wrote the manifest
chose those names and the `root`/`file` recorded with them. The reproductions below ship a
module inside the run directory and point the manifest at it every way Python could import it:
the run directory's name as a (namespace or regular) package, the current directory inside the
run directory, a dotted name whose packages live there. No command may execute it: `report`,
`replay rescore`, `verify --against recorded` and `reexecute` import no user code at all;
`--resume`, `verify --against sandbox` and `branch` refuse before importing (an error), and
`merge` too (a warning: it imports the plugins only to load the pack).

Every command runs through the installed console script in a fresh process, as a user runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.results.store import RunStore
from scenarios.records import EpisodeStatus, JournalEntry

PROPENSITY = Path(sys.executable).parent / "propensity"
RUN = "shared_run"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROPENSITY_PLUGINS")}
    return {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "200", **extra}


def propensity(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert PROPENSITY.is_file(), f"no console script at {PROPENSITY}"
    return subprocess.run(
        [str(PROPENSITY), *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run, made once and copied by each test."""
    where = tmp_path_factory.mktemp("recorded")
    done = propensity(
        "run", "--suite", "starter", "--limit", "1", "--agent", "always-safe",
        "--pressure", "time", "--levels", "1-2", "--naming", "harmful", "--out", RUN,
        "--quiet", cwd=where,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return where / RUN


class Shipped:
    """A copy of the run under ``home/shared_run`` with code in it that leaves a marker."""

    def __init__(self, recorded: Path, home: Path) -> None:
        self.home = home
        self.run_dir = home / RUN
        shutil.copytree(recorded, self.run_dir)
        self.marker = home.parent / f"{home.name}-EXECUTED"

    def ship(self, relative: str) -> Path:
        """A file of code in the run directory (at ``relative``) that leaves the marker."""
        path = self.run_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"open({str(self.marker)!r}, 'a').write(__name__ + '\\n')\n"
            "def agent(request):\n    raise SystemExit('shipped agent ran')\n",
            encoding="utf-8",
        )
        return path

    def manifest(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.run_dir / "manifest.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data), encoding="utf-8")

    def modules(self, *records: dict[str, Any]) -> None:
        self.manifest(lambda data: data.__setitem__("user_modules", list(records)))

    def episode(self) -> str:
        return sorted(RunStore(self.run_dir).latest_states())[0]

    def executed(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def shipped(recorded_run: Path, tmp_path: Path) -> Shipped:
    return Shipped(recorded_run, tmp_path / "home")


def _reading_commands(run: str, episode: str, out: Path) -> dict[str, list[str]]:
    """Commands that only read the run: they import no user code, whatever the manifest says."""
    return {
        "report": ["report", run],
        "report --html": ["report", run, "--html", str(out / "report.html")],
        "rescore": ["replay", "rescore", run],
        "verify": ["replay", "verify", run],
        "verify --against recorded": ["replay", "verify", "--against", "recorded", run],
        "reexecute": ["replay", "reexecute", run, "--episode", episode],
    }


def _rebuilding_commands(run: str, episode: str, out: Path) -> dict[str, list[str]]:
    """Commands that rebuild the run's tools or agents: they import recorded code, guarded."""
    branch = ["replay", "branch", run, "--episode", episode, "--at", "1", "--agent"]
    return {
        "verify --against sandbox": ["replay", "verify", "--against", "sandbox", run],
        "branch": [*branch, "always-safe", "--out", str(out / "branched")],
        "resume": ["run", "--resume", run, "--quiet"],
    }


def _assert_refused(done: subprocess.CompletedProcess[str], what: str) -> None:
    message = " ".join(done.stderr.split())
    assert done.returncode != 0, f"{what}: {done.stdout}{done.stderr}"
    assert "never imported from a run directory" in message, f"{what}: {message}"
    assert "Traceback" not in message


def test_the_run_directory_as_a_namespace_package_runs_nothing(
    shipped: Shipped, tmp_path: Path
) -> None:
    # The adversary's reproduction: `shared_run.evilmod`, found through the current directory
    # (the run directory's parent) with the run directory's name as a namespace package.
    shipped.ship("evilmod.py")
    shipped.modules({"module": f"{RUN}.evilmod", "role": "plugin", "given_as": "--plugin"})
    episode = shipped.episode()
    for what, args in _reading_commands(RUN, episode, tmp_path).items():
        done = propensity(*args, cwd=shipped.home)
        assert not shipped.executed(), f"{what} executed the shipped module"
        assert "evilmod" not in done.stderr, f"{what} tried to import it: {done.stderr}"
    for what, args in _rebuilding_commands(RUN, episode, tmp_path).items():
        done = propensity(*args, cwd=shipped.home)
        assert not shipped.executed(), f"{what} executed the shipped module"
        _assert_refused(done, what)
    merged = propensity("merge", RUN, "--out", str(tmp_path / "merged"), cwd=shipped.home)
    assert not shipped.executed(), "merge executed the shipped module"
    assert merged.returncode == 0, merged.stderr
    assert "never imported from a run directory" in " ".join(merged.stderr.split())
    # Also with the parent on PYTHONPATH (as `python -m` puts the current directory first).
    resume = _rebuilding_commands(RUN, episode, tmp_path)["resume"]
    done = propensity(*resume, cwd=shipped.home, PYTHONPATH=str(shipped.home))
    _assert_refused(done, "resume with PYTHONPATH")
    assert not shipped.executed()


def test_the_run_directory_as_a_regular_package_runs_nothing(shipped: Shipped) -> None:
    # With an __init__.py the run directory is a regular package: importing any submodule
    # would execute it first.
    shipped.ship("__init__.py")
    shipped.ship("evilmod.py")
    shipped.modules({"module": f"{RUN}.evilmod", "role": "toolkit"})
    done = propensity("replay", "verify", "--against", "sandbox", RUN, cwd=shipped.home)
    _assert_refused(done, "verify --against sandbox")
    assert RUN in done.stderr and "__init__.py" in done.stderr
    assert not shipped.executed()


def test_the_current_directory_inside_the_run_directory_runs_nothing(
    shipped: Shipped, tmp_path: Path
) -> None:
    # `cd shared_run && propensity report .`: the module is plain `evilmod`, and what the
    # manifest says of where it came from (root, file) points outside the run directory.
    shipped.ship("evilmod.py")
    decoy = shipped.home / "decoy.py"
    decoy.write_text("", encoding="utf-8")
    shipped.modules(
        {"module": "evilmod", "role": "plugin", "root": str(shipped.home), "file": str(decoy)}
    )
    episode = shipped.episode()
    merge = {"merge": ["merge", ".", "--out", str(tmp_path / "merged")]}
    for what, args in {
        **_reading_commands(".", episode, tmp_path),
        **_rebuilding_commands(".", episode, tmp_path),
        **merge,
    }.items():
        done = propensity(*args, cwd=shipped.run_dir)
        assert not shipped.executed(), f"{what} executed the shipped module: {done.stderr}"
    # The current directory put on the import path by hand: the guard still refuses.
    for what, args in _rebuilding_commands(".", episode, tmp_path).items():
        done = propensity(*args, cwd=shipped.run_dir, PYTHONPATH=".")
        _assert_refused(done, what)
        assert not shipped.executed(), f"{what} executed the shipped module"
    merged = propensity(*merge["merge"], cwd=shipped.run_dir, PYTHONPATH=".")
    assert "never imported from a run directory" in " ".join(merged.stderr.split())
    assert not shipped.executed(), "merge executed the shipped module"


def test_a_dotted_module_whose_packages_are_in_the_run_directory_runs_nothing(
    shipped: Shipped,
) -> None:
    # `evilpkg.tools.kit`: every package on the way is shipped; none of their __init__ runs.
    for part in ("evilpkg/__init__.py", "evilpkg/tools/__init__.py", "evilpkg/tools/kit.py"):
        shipped.ship(part)
    shipped.modules({"module": "evilpkg.tools.kit", "role": "plugin"})
    done = propensity("run", "--resume", ".", "--quiet", cwd=shipped.run_dir, PYTHONPATH=".")
    _assert_refused(done, "resume")
    assert not shipped.executed()
    # The same package reached through the run directory's name from its parent.
    shipped.modules({"module": f"{RUN}.evilpkg.tools.kit", "role": "toolkit"})
    done = propensity("replay", "verify", "--against", "sandbox", RUN, cwd=shipped.home)
    _assert_refused(done, "verify --against sandbox")
    assert not shipped.executed()


def test_a_python_agent_the_manifest_names_only_in_its_configuration_runs_nothing(
    shipped: Shipped,
) -> None:
    # A manifest from before modules were recorded (or edited so) names the agent only in its
    # configuration: --resume would build it. It is imported through the same guard first.
    shipped.ship("evilagent.py")

    def edit(data: dict[str, Any]) -> None:
        data["user_modules"] = []
        data["config"]["agents"] = [{"spec": f"python:{RUN}.evilagent:agent"}]

    shipped.manifest(edit)
    store = RunStore(shipped.run_dir)
    victim = sorted(store.latest_states())[0]
    store.journal(JournalEntry(episode_id=victim, status=EpisodeStatus.RUNNING, attempt=2))
    store.close()
    done = propensity("run", "--resume", RUN, "--quiet", cwd=shipped.home)
    _assert_refused(done, "resume")
    assert not shipped.executed()
