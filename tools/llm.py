"""The one place litellm is imported, so its offline-safe defaults always apply first.

litellm fetches its model cost map from the internet at import time and stalls for seconds
offline; we default to the copy bundled with the package (a user may override the variable).
The import is lazy because it costs about a second and most commands never need it.

Once imported, litellm (and the openai SDK, pydantic models, aiohttp it brings) is about half
a million objects that live as long as the process. Every full garbage collection walked all of
them (about 0.3 s each on a small machine, several times a minute at a few hundred calls a
second), so they are moved out of the collector's sight (`gc.freeze`) right after the import, with
whatever else is alive then (the litellm agent imports litellm when it is built, before any
episode starts); what the process allocates later is collected as before.
"""

from __future__ import annotations

import gc
import os
from functools import cache
from types import ModuleType

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@cache
def litellm() -> ModuleType:
    import litellm as module

    module.telemetry = False
    module.suppress_debug_info = True
    gc.freeze()
    return module
