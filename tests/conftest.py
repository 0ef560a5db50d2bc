"""Shared fixtures. Tests never reach beyond 127.0.0.1 and never need a real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = PROJECT_ROOT.parent / "shared" / "external"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `external` skip only where the external folder is absent (never in CI)."""
    if EXTERNAL.is_dir():
        return
    if os.environ.get("CI"):
        return  # in CI the folder must be there: let the tests fail loudly instead
    skip = pytest.mark.skip(reason=f"external test material not found at {EXTERNAL}")
    for item in items:
        if "external" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def starter_pack():  # type: ignore[no-untyped-def]
    from scenarios import load_pack

    return load_pack("starter")


@pytest.fixture(scope="session")
def docker_engine() -> object:
    """A running Docker engine (started if need be); skips only outside CI when there is none."""
    from sandbox.environments import EngineUnavailable, ensure_engine

    try:
        return ensure_engine()
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            raise  # CI installs and starts the engine: a missing one is a failure there
        pytest.skip(f"no Docker engine here: {exc}")


@pytest.fixture(scope="session")
def sandbox_image(docker_engine: object) -> str:
    from containers import ImageBuilder, code_interpreter_spec

    return ImageBuilder(docker_engine, log=lambda _: None).ensure(code_interpreter_spec())
