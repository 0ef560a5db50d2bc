"""Offline local models: catalog, assembly and verification, our chat handler, servers."""

from sandbox.local_model.assemble import (
    LocalModelError,
    ModelIntegrityError,
    find_parts,
    model_dir,
    prepare_model,
    verify_file,
)
from sandbox.local_model.catalog import (
    CATALOG,
    LOCAL_PREFIX,
    LocalModelSpec,
    UnknownLocalModel,
    is_local,
    local_model,
)
from sandbox.local_model.servers import (
    LocalModelServers,
    llama_cpp_available,
    local_servers,
    require_llama_cpp,
)

__all__ = [
    "CATALOG",
    "LOCAL_PREFIX",
    "LocalModelError",
    "LocalModelServers",
    "LocalModelSpec",
    "ModelIntegrityError",
    "UnknownLocalModel",
    "find_parts",
    "is_local",
    "llama_cpp_available",
    "local_model",
    "local_servers",
    "model_dir",
    "prepare_model",
    "require_llama_cpp",
    "verify_file",
]
