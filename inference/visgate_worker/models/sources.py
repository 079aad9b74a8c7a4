"""Where a model's files come from: a hub snapshot under MODEL_CACHE_DIR, or a local folder (the
demo models). `is_cached` never touches the network, so start-up can say `downloading_model`
only when it really downloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from visgate_worker.errors import ModelLoadError


class Source(Protocol):
    label: str

    def is_cached(self) -> bool: ...

    def fetch(self) -> Path: ...


@dataclass(frozen=True)
class HubSnapshot:
    """A hub repo (optionally a subset of its files) in the standard hub cache layout."""

    repo_id: str
    cache_dir: Path
    token: str | None = field(default=None, repr=False)
    allow_patterns: tuple[str, ...] | None = None
    local_dir: Path | None = None  # for packages that insist on their own folder layout

    @property
    def label(self) -> str:
        return self.repo_id

    def _download(self, *, local_files_only: bool) -> Path:
        return Path(
            snapshot_download(
                self.repo_id,
                cache_dir=self.cache_dir,
                local_dir=self.local_dir,
                token=self.token,
                allow_patterns=list(self.allow_patterns) if self.allow_patterns else None,
                local_files_only=local_files_only,
            )
        )

    def is_cached(self) -> bool:
        if self.local_dir is not None:
            return self.local_dir.is_dir() and any(self.local_dir.iterdir())
        try:
            self._download(local_files_only=True)
        except (LocalEntryNotFoundError, FileNotFoundError, OSError):
            return False
        return True

    def fetch(self) -> Path:
        try:
            return self._download(local_files_only=False)
        except Exception as exc:
            raise ModelLoadError(
                f"could not download {self.repo_id}: {type(exc).__name__}: {exc}"
            ) from exc


@dataclass(frozen=True)
class DiffusersSnapshot:
    """A diffusers pipeline repo, fetched the way diffusers does (one weight variant only)."""

    repo_id: str
    cache_dir: Path
    token: str | None = field(default=None, repr=False)
    variant: str | None = None

    @property
    def label(self) -> str:
        return self.repo_id

    def _download(self, *, local_files_only: bool) -> Path:
        from diffusers import DiffusionPipeline

        return Path(
            DiffusionPipeline.download(
                self.repo_id,
                cache_dir=self.cache_dir,
                token=self.token,
                variant=self.variant,
                local_files_only=local_files_only,
            )
        )

    def is_cached(self) -> bool:
        try:
            self._download(local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError):
            return False
        return True

    def fetch(self) -> Path:
        try:
            return self._download(local_files_only=False)
        except Exception as exc:
            raise ModelLoadError(
                f"could not download {self.repo_id}: {type(exc).__name__}: {exc}"
            ) from exc


@dataclass(frozen=True)
class LocalFolder:
    """A folder already on disk (the demo models, or a model baked into the image)."""

    path: Path
    label: str

    def is_cached(self) -> bool:
        return self.path.is_dir()

    def fetch(self) -> Path:
        if not self.path.is_dir():
            raise ModelLoadError(f"model folder {self.path} does not exist")
        return self.path
