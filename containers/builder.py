"""Building the container images with no container registry.

Images are tagged by a hash of everything that goes into them, so a build is skipped when its
inputs are unchanged and redone when any of them changes. The base image comes from a registry
when one answers, else it is bootstrapped from Debian packages (debootstrap, then
`docker import`), which works on any machine that can reach Debian's package mirror.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

IMAGE_LABEL = "propensity.image"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class BaseSpec:
    """What the bootstrapped base contains: Python 3 and a few common libraries."""

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = (
        "python3",
        "python3-numpy",
        "python3-pandas",
        "python3-psutil",
        "python3-sympy",
        "ca-certificates",
        "procps",
    )
    registry_image: str = "python:3.11-slim-bookworm"

    def digest(self) -> str:
        return _hash([repr(self).encode()])


@dataclass(frozen=True)
class ImageSpec:
    name: str
    context: Path
    base: BaseSpec = field(default_factory=BaseSpec)

    def digest(self) -> str:
        files = sorted(
            p
            for p in self.context.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
        parts = [self.base.digest().encode()]
        for path in files:
            parts += [str(path.relative_to(self.context)).encode(), path.read_bytes()]
        return _hash(parts)

    @property
    def tag(self) -> str:
        return f"propensity/{self.name}:{self.digest()}"

    @property
    def base_tag(self) -> str:
        return f"propensity/base:{self.base.digest()}"


def _hash(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def code_interpreter_spec() -> ImageSpec:
    return ImageSpec(
        "code-interpreter", Path(str(resources.files("containers") / "code-interpreter"))
    )


class BuildError(RuntimeError):
    pass


Log = Callable[[str], None]


class ImageBuilder:
    """Blocking (Docker SDK and subprocesses); callers on an event loop use asyncio.to_thread."""

    def __init__(self, client: Any, *, log: Log = print, mirror: str | None = None) -> None:
        self.client = client
        self.log = log
        self.mirror = mirror or os.environ.get("PROPENSITY_DEBIAN_MIRROR", DEFAULT_MIRROR)

    def _exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def ensure(self, spec: ImageSpec, *, force: bool = False) -> str:
        if not force and self._exists(spec.tag):
            self.log(f"{spec.tag} is up to date")
            return spec.tag
        self._ensure_base(spec, force=force)
        self.log(f"building {spec.tag} from {spec.context}")
        try:
            self.client.images.build(
                path=str(spec.context),
                tag=spec.tag,
                buildargs={"BASE_IMAGE": spec.base_tag},
                network_mode="none",
                rm=True,
                forcerm=True,
                labels={IMAGE_LABEL: spec.name},
            )
        except Exception as exc:
            raise BuildError(f"building {spec.tag} failed: {exc}") from exc
        self.log(f"built {spec.tag}")
        return spec.tag

    def _ensure_base(self, spec: ImageSpec, *, force: bool) -> None:
        if not force and self._exists(spec.base_tag):
            return
        if self._from_registry(spec):
            return
        self._bootstrap(spec)

    def _from_registry(self, spec: ImageSpec) -> bool:
        """A registry base when one can be pulled; any failure means: bootstrap instead."""
        repository, _, tag = spec.base.registry_image.partition(":")
        try:
            self.client.images.pull(repository, tag=tag or "latest")
        except Exception as exc:
            self.log(f"no registry base ({type(exc).__name__}); bootstrapping from Debian packages")
            return False
        dockerfile = (
            f"FROM {spec.base.registry_image}\n"
            "RUN pip install --no-cache-dir numpy pandas psutil sympy && apt-get update && "
            "apt-get install -y --no-install-recommends procps && rm -rf /var/lib/apt/lists/*\n"
            "RUN ln -sf /usr/local/bin/python3 /usr/bin/python3\n"
        )
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "Dockerfile").write_text(dockerfile)
            try:
                self.client.images.build(
                    path=tmp, tag=spec.base_tag, network_mode="host", rm=True, forcerm=True
                )
            except Exception as exc:
                self.log(f"registry base could not be completed ({exc}); bootstrapping instead")
                return False
        self.log(f"base {spec.base_tag} from {spec.base.registry_image}")
        return True

    def _bootstrap(self, spec: ImageSpec) -> None:
        if shutil.which("debootstrap") is None:
            raise BuildError("debootstrap is not installed (apt-get install -y debootstrap)")
        base = spec.base
        with tempfile.TemporaryDirectory(prefix="propensity-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            self.log(
                f"debootstrap {base.suite} ({base.variant}, {', '.join(base.packages)}) "
                f"from {self.mirror}: about a minute"
            )
            command = [
                "debootstrap",
                f"--variant={base.variant}",
                f"--include={','.join(base.packages)}",
                base.suite,
                str(rootfs),
                self.mirror,
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = (result.stdout + result.stderr)[-2000:]
                raise BuildError(f"debootstrap failed ({result.returncode}):\n{tail}")
            archive = Path(tmp) / "rootfs.tar"
            subprocess.run(
                ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."],
                check=True,
            )
            repository, _, tag = spec.base_tag.partition(":")
            self.log(f"docker import {spec.base_tag}")
            self.client.api.import_image_from_file(str(archive), repository=repository, tag=tag)
        if not self._exists(spec.base_tag):
            raise BuildError(f"docker import did not produce {spec.base_tag}")
