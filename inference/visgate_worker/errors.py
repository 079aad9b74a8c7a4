"""The worker's own error types: the image ships without the control plane, so it cannot import
`visgate.domain.errors`; the `type` names still follow the control plane's wire convention."""

from __future__ import annotations


class WorkerError(Exception):
    """Base: `type` is the name a job error or a failed callback reports."""

    @property
    def type(self) -> str:
        return type(self).__name__


class MissingPackageError(WorkerError):
    """A model's Python package is not importable; the message says how the image installs it."""


class ModelLoadError(WorkerError):
    """A model could not be fetched or loaded."""


class PartGenerationError(WorkerError):
    """The primary part generator produced nothing usable; the fallback path takes over."""


class MeshGenerationError(WorkerError):
    """The fallback mesh generator produced no mesh."""


class WorkerNotReadyError(WorkerError):
    """A job arrived before `startup()` finished."""
