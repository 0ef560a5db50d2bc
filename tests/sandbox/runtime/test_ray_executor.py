"""The Ray executor (``--executor ray``): a real local Ray cluster runs a suite's episodes and the
run directory the driver writes equals a local run's, also after the driver is killed and the
run resumed; a lost worker is infrastructure, never behaviour."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import pressure_then_risky_script

from sandbox import RunStore
from sandbox.runtime.config import EpisodeSpec
from sandbox.runtime.errors import RunError
from sandbox.runtime.ray_executor import INSTALL_HINT, accept_report
from sandbox.testing import Faults, Script, ScriptedOpenAIServer
from scenarios import Naming, load_pack
from scenarios.records import EpisodeStatus

ROOT = Path(__file__).resolve().parents[3]
RAY = Path(sys.executable).with_name("ray")
needs_ray = pytest.mark.skipif(
    shutil.which(str(RAY)) is None, reason="Ray is not installed (the extra `ray`)"
)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandbox.cli", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster of its own (head node, 2 CPUs), as `ray start` makes one. It uses
    token authentication, which a driver given its address uses only with RAY_AUTH_MODE=token
    (the token from ~/.ray/auth_token, as `ray start` wrote it)."""
    port = _free_port()
    mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    subprocess.run(
        [
            str(RAY), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
            "--num-cpus=2", "--include-dashboard=false", "--object-store-memory=100000000",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)
        if mode is None:
            del os.environ["RAY_AUTH_MODE"]
        else:
            os.environ["RAY_AUTH_MODE"] = mode


def _scores(store: RunStore) -> dict[tuple[str, str], tuple[object, ...]]:
    """Every score's value, label and details, by episode and evaluator (none twice)."""
    scores = store.read_scores()
    view = {
        (s.episode_id, s.evaluator): (s.value, s.label, json.dumps(s.details, sort_keys=True))
        for s in scores
    }
    assert len(view) == len(scores), "a score was written twice"
    return view


def _assert_same_run(local: RunStore, ray: RunStore) -> None:
    states_a, states_b = local.latest_states(), ray.latest_states()
    assert set(states_a) == set(states_b)
    assert all(s.status is EpisodeStatus.DONE for s in states_b.values())
    assert _scores(local) == _scores(ray)
    for episode_id in states_a:
        types_a = [e.type for e in local.read_trajectory(episode_id).events]
        assert types_a == [e.type for e in ray.read_trajectory(episode_id).events]
        assert ray.trajectory_complete(episode_id)
    summary_a = json.loads(local.summary_path.read_text())
    summary_b = json.loads(ray.summary_path.read_text())
    for section in ("propensity", "episodes", "scored", "errored", "llm_calls"):
        assert summary_a[section] == summary_b[section]


def _done_count(journal: Path) -> int:
    return journal.read_text().count('"status":"done"') if journal.exists() else 0


@needs_ray
@pytest.mark.slow
async def test_a_suite_through_ray_equals_the_local_run_even_after_a_kill(
    tmp_path: Path, ray_cluster: str
) -> None:
    script = Script.from_dict(pressure_then_risky_script(load_pack("starter")))
    async with ScriptedOpenAIServer(script, faults=Faults(delay_s=0.05)) as server:
        common = [
            "run", "--suite", "starter", "--agent", "openai/scripted", "--agent", "always-safe",
            "--api-base", server.url, "--limit", "4", "--pressure", "time,financials",
            "--concurrency", "4", "--quiet",
        ]  # fmt: skip
        local, ray, killed = tmp_path / "local", tmp_path / "ray", tmp_path / "killed"
        proc = await asyncio.create_subprocess_exec(*_cli(*common, "--out", str(local)), cwd=ROOT)
        assert await proc.wait() == 0

        proc = await asyncio.create_subprocess_exec(
            *_cli(*common, "--out", str(ray), "--ray-address", ray_cluster, "--ray-workers", "2"),
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "2 worker(s) on 1 node(s)" in err.decode()
        _assert_same_run(RunStore(local), RunStore(ray))
        config = RunStore(ray).read_manifest().config
        assert (config.executor, config.ray_address, config.ray_workers) == (
            "ray",
            ray_cluster,
            2,
        )
        # How it ran is not what it measured: the two runs are parts of one suite run.
        assert config.identity_hash() == RunStore(local).read_manifest().config_hash

        # The driver killed halfway: its in-flight episodes are `running`, and a resume (through
        # Ray, as the manifest says) runs exactly those again.
        proc = await asyncio.create_subprocess_exec(
            *_cli(
                *common, "--out", str(killed), "--ray-address", ray_cluster, "--ray-workers", "2"
            ),
            cwd=ROOT,
        )
        total = RunStore(local).read_manifest().episodes_total
        async with asyncio.timeout(240):
            while _done_count(killed / "journal.jsonl") < total // 2:  # noqa: ASYNC110 (a file)
                await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        states = RunStore(killed).latest_states()
        done_before = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
        assert done_before and len(done_before) < total, "the kill must land halfway"

        proc = await asyncio.create_subprocess_exec(
            *_cli("run", "--resume", str(killed), "--quiet"),
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "Ray: " in err.decode()
    _assert_same_run(RunStore(local), RunStore(killed))
    journal = RunStore(killed).read_journal()
    for episode_id in done_before:  # finished before the kill: not run again
        starts = [
            j for j in journal if j.episode_id == episode_id and j.status is EpisodeStatus.RUNNING
        ]
        assert len(starts) == 1


DYING_AGENT = """
import os
from pathlib import Path

MARK = Path(__file__).with_name("died-once")

def dies_once(request):
    # The first call anywhere kills the process it runs in (a Ray worker), once.
    if not MARK.exists():
        MARK.write_text("x")
        os._exit(1)
    return "I will wait for the approved route."
"""


@needs_ray
@pytest.mark.slow
def test_a_lost_worker_is_infrastructure_and_a_retry_completes_the_run(tmp_path: Path) -> None:
    (tmp_path / "dying_agent.py").write_text(textwrap.dedent(DYING_AGENT))
    common = [
        "--suite", "starter", "--agent", "python:dying_agent:dies_once", "--limit", "2",
        "--pressure", "time", "--concurrency", "2", "--quiet",
    ]  # fmt: skip
    run_dir = tmp_path / "run"
    # No address: the driver starts a local cluster of its own and stops it at the end.
    done = subprocess.run(
        _cli("run", *common, "--out", str(run_dir), "--executor", "ray", "--ray-workers", "2"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr
    assert "was lost; a new one takes its place" in done.stderr
    store = RunStore(run_dir)
    states = store.latest_states()
    lost = {e for e, s in states.items() if s.reason == "worker_lost"}
    assert lost, states
    assert all(states[e].status is EpisodeStatus.ERRORED for e in lost)
    assert not {s.episode_id for s in store.read_scores()} & lost  # never scored as behaviour
    for episode_id in lost:
        events = store.read_trajectory(episode_id).events
        assert [e.type for e in events] == ["error", "episode_ended"]
        assert "Ray worker was lost" in events[0].message  # type: ignore[union-attr]
    summary = json.loads(store.summary_path.read_text())
    assert summary["errored"] == len(lost) and summary["errors"] == {"worker_lost": len(lost)}

    again = subprocess.run(
        _cli("run", "--resume", str(run_dir), "--retry-errored", "--quiet"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert again.returncode == 0, again.stderr
    local = subprocess.run(
        _cli("run", *common, "--out", str(tmp_path / "local")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert local.returncode == 0, local.stderr
    _assert_same_run(RunStore(tmp_path / "local"), RunStore(run_dir))


def _spec() -> EpisodeSpec:
    return EpisodeSpec(
        id="s.time.harmful.a.r1",
        scenario_id="s",
        domain="d",
        category="time",
        naming=Naming.HARMFUL,
        agent="a",
        repeat=1,
        seed=1,
    )


def _report(**change: Any) -> dict[str, Any]:
    ended = {"type": "episode_ended", "t": 0, "status": "done", "reason": "finished"}
    report: dict[str, Any] = {
        "episode_id": "s.time.harmful.a.r1",
        "status": "done",
        "reason": "finished",
        "trajectory": json.dumps(ended) + "\n",
    }
    report.update(change)
    return report


def test_a_worker_report_is_validated_like_input_from_disk() -> None:
    report, events = accept_report(_spec(), _report())
    assert report.status is EpisodeStatus.DONE and [e.type for e in events] == ["episode_ended"]
    with pytest.raises(ValueError, match="a report of episode 'other'"):
        accept_report(_spec(), _report(episode_id="other"))
    with pytest.raises(ValueError, match="does not end errored"):
        accept_report(_spec(), _report(status="errored"))
    with pytest.raises(ValueError, match="trajectory line 2"):
        accept_report(_spec(), _report(trajectory=_report()["trajectory"] + '{"type": "nope"}'))
    with pytest.raises(ValueError, match="does not end done"):
        accept_report(_spec(), _report(trajectory=""))
    with pytest.raises(ValueError, match="calls"):
        accept_report(_spec(), _report(calls=-1))
    score = {"episode_id": "x", "evaluator": "e", "value": 1.0}
    with pytest.raises(ValueError, match="another episode"):
        accept_report(_spec(), _report(scores=[score]))


def test_without_ray_the_executor_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sandbox.runtime import ray_executor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RunError) as caught:
        ray_executor._import_ray()
    assert str(caught.value) == INSTALL_HINT and "--extra ray" in INSTALL_HINT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ray-workers", "0"], "--ray-workers must be at least 1"),
        (["--executor", "local", "--ray-address", "auto"], "are for --executor ray"),
    ],
)
def test_executor_options_are_checked(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.cli import main

    status = main(["run", "--suite", "starter", "--agent", "always-safe", "--out",
                   str(tmp_path / "r"), *args])  # fmt: skip
    assert status != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@needs_ray
def test_an_unreachable_cluster_refuses_the_run_before_anything_is_written(
    tmp_path: Path,
) -> None:
    port = _free_port()  # nothing listens there
    done = subprocess.run(
        _cli("run", "--suite", "starter", "--agent", "always-safe", "--limit", "1",
             "--out", str(tmp_path / "run"), "--ray-address", f"127.0.0.1:{port}", "--quiet"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot connect to Ray at 127.0.0.1:{port}" in done.stderr
    assert "ray start --head" in done.stderr
    assert not (tmp_path / "run").exists()


@needs_ray
@pytest.mark.slow
def test_containerised_code_tasks_run_in_the_workers_own_sandboxes(
    tmp_path: Path, ray_cluster: str, sandbox_image: str
) -> None:
    """The injection pack's code tasks (real containers, hard limits) through two Ray workers:
    the same outcomes as a local run (the measured peaks differ run to run, the verdicts not),
    and none of the workers' containers (labelled with the run's name and the worker's) left
    behind."""
    import docker

    from sandbox.environments.docker_env import RUN_LABEL

    common = [
        "run", "--suite", "injection", "--toolkits", str(ROOT / "scenarios/toolkits/injection"),
        "--kind", "code_task", "--agent", "follows-injections", "--agent", "ignores-injections",
        "--quiet",
    ]  # fmt: skip
    for name, extra in (("local", []), ("ray", ["--ray-address", ray_cluster])):
        done = subprocess.run(
            _cli(*common, "--out", str(tmp_path / name), *extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stderr

    def verdicts(run: str) -> dict[tuple[str, str], tuple[object, object]]:
        scores = RunStore(tmp_path / run).read_scores()
        return {(s.episode_id, s.evaluator): (s.value, s.label) for s in scores}

    local, ray = verdicts("local"), verdicts("ray")
    assert local == ray and any(k[1] == "code_execution" for k in local)
    left = docker.from_env().containers.list(all=True, filters={"label": RUN_LABEL})
    assert not [c for c in left if str(c.labels.get(RUN_LABEL, "")).startswith("ray")]


@needs_ray
def test_a_port_that_is_no_ray_cluster_is_refused_within_the_connect_time(
    tmp_path: Path,
) -> None:
    """A web server on the port accepts the connection, and Ray would retry without end."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            _cli("run", "--suite", "starter", "--agent", "always-safe", "--limit", "1",
                 "--out", str(tmp_path / "run"), "--quiet",
                 "--ray-address", f"127.0.0.1:{server.server_address[1]}"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PROPENSITY_RAY_CONNECT_TIMEOUT_S": "8"},
        )  # fmt: skip
    finally:
        server.shutdown()
    assert done.returncode != 0
    assert "no Ray cluster answered at 127.0.0.1:" in done.stderr and "within 8 s" in done.stderr
    assert not (tmp_path / "run").exists()
