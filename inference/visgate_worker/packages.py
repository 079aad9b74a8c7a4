"""Import a model's upstream package by its real module path, or say how the image installs it.

The names matter: Hunyuan3D-2 is `hy3dgen.shapegen` (not `hunyuan3d`), PartCrafter is the
repository's own `src.pipelines...` tree (not on PyPI), SAM 2 comes with transformers.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from visgate_worker.errors import MissingPackageError

# How inference/Dockerfile provides each package, quoted in the error a user sees.
INSTALL_HINTS = {
    "hy3dgen": "pip package `hy3dgen` (the image pins it in inference/requirements.txt)",
    "PartCrafter": (
        "not on PyPI: the image clones github.com/wgsxm/PartCrafter at a pinned commit into "
        "/opt/PartCrafter and puts it on PYTHONPATH (see inference/Dockerfile)"
    ),
    "transformers": "pip package `transformers` (pinned in inference/requirements.txt)",
    "diffusers": "pip package `diffusers` (pinned in inference/requirements.txt)",
}


def require(module: str, *, package: str) -> ModuleType:
    """Import `module`; a missing one raises MissingPackageError naming `package` and its install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(package, f"pip package `{package}`")
        raise MissingPackageError(
            f"{package} is not installed (cannot import `{module}`: {exc}); "
            f"the worker image installs it as {hint}"
        ) from exc
