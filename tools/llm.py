"""The one place litellm is imported, so its offline-safe defaults always apply first.

litellm fetches its model cost map from the internet at import time and stalls for seconds
offline; we default to the copy bundled with the package (a user may override the variable).
The import is lazy because it costs about a second and most commands never need it.
"""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@cache
def litellm() -> ModuleType:
    import litellm as module

    module.telemetry = False
    module.suppress_debug_info = True
    return module
