"""Runpod's cached models: an endpoint that uses them finds its hub repos on the worker's disk
before the worker starts (download not billed), in the standard hub cache layout under
`RUNPOD_MODEL_CACHE_DIR` (`/runpod-volume/huggingface-cache/hub`):
`models--ORG--NAME/refs/main` names a commit, `models--ORG--NAME/snapshots/<commit>/` holds it.

A model found complete there is loaded from its snapshot folder with no download; an entry that
is incomplete (refs/main naming a missing snapshot, an empty snapshot, a broken blob link) is
logged with the reason and the model is fetched as usual. Nothing here writes into that folder:
it is Runpod's.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from huggingface_hub import CorruptedCacheException, scan_cache_dir
from huggingface_hub.file_download import repo_folder_name

from visgate_worker.models.sources import Source

log = structlog.get_logger(__name__)

DEFAULT_RUNPOD_CACHE = Path("/runpod-volume/huggingface-cache/hub")
FROM_CACHE = "from Runpod's model cache (no download)"


def find_snapshot(repo_id: str, root: Path) -> Path | None:
    """The snapshot folder of `repo_id`'s main revision in Runpod's cache at `root`, or None when
    the repo is not there (silently) or its entry cannot be used (logged with the reason)."""
    # resolved as the scan resolves it: /runpod-volume may well be a link
    repo_dir = root.resolve() / repo_folder_name(repo_id=repo_id, repo_type="model")
    if not repo_dir.is_dir():
        return None
    try:
        info = scan_cache_dir(root)
    except (CorruptedCacheException, OSError, ValueError) as exc:
        return _unusable(repo_id, repo_dir, f"the cache cannot be read: {exc}")
    repo = next((r for r in info.repos if r.repo_path == repo_dir), None)
    if repo is None:  # the scan rejected this entry: its warning says why
        problems = [str(w) for w in info.warnings if str(repo_dir) in str(w)]
        return _unusable(repo_id, repo_dir, "; ".join(problems) or "not a hub cache entry")
    main = [rev for rev in repo.revisions if "main" in rev.refs]
    if main:
        revision = main[0]
    elif len(repo.revisions) == 1:
        (revision,) = repo.revisions
        log.info("runpod_cache_without_refs_main", model=repo_id, snapshot=revision.commit_hash)
    else:
        found = len(repo.revisions)
        return _unusable(repo_id, repo_dir, f"no refs/main, and {found} snapshots to choose from")
    if revision.nb_files == 0:
        return _unusable(repo_id, repo_dir, f"snapshot {revision.commit_hash} is empty")
    return revision.snapshot_path


def _unusable(repo_id: str, repo_dir: Path, reason: str) -> None:
    log.warning(
        "runpod_cache_entry_incomplete",
        model=repo_id,
        path=str(repo_dir),
        reason=reason,
        action="downloading as usual",
    )
    return None


class RunpodCached:
    """A model source that takes the repo from Runpod's cache when it is complete there, and
    from `fallback` (the usual hub download into MODEL_CACHE_DIR) otherwise.

    `link_as`: for packages that only find their weights at a fixed path (hy3dgen), the snapshot
    is linked there (a symlink outside Runpod's folder) and that path is returned.
    """

    def __init__(
        self, repo_id: str, root: Path, fallback: Source, *, link_as: Path | None = None
    ) -> None:
        self.repo_id = repo_id
        self.root = root
        self.fallback = fallback
        self.link_as = link_as
        self._looked_up = False
        self._snapshot: Path | None = None

    def __repr__(self) -> str:
        return f"RunpodCached(repo_id={self.repo_id!r}, root={str(self.root)!r})"

    @property
    def label(self) -> str:
        return self.repo_id

    @property
    def snapshot(self) -> Path | None:
        """Looked up once: Runpod fills its cache before the worker starts."""
        if not self._looked_up:
            self._snapshot = find_snapshot(self.repo_id, self.root)
            self._looked_up = True
        return self._snapshot

    @property
    def from_runpod_cache(self) -> bool:
        return self.snapshot is not None

    def is_cached(self) -> bool:
        return self.from_runpod_cache or self.fallback.is_cached()

    def fetch(self) -> Path:
        snapshot = self.snapshot
        if snapshot is None:
            return self.fallback.fetch()
        log.info("model_from_runpod_cache", model=self.repo_id, path=str(snapshot))
        if self.link_as is None:
            return snapshot
        _link(self.link_as, snapshot)
        return self.link_as


def _link(link: Path, target: Path) -> None:
    """Point `link` at `target`, replacing an older link atomically (workers may share the
    folder that holds it)."""
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    staging = link.with_name(f".{link.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target, target_is_directory=True)
    os.replace(staging, link)


def cached_labels(sources: list[Source]) -> list[str]:
    """The labels of the sources that come from Runpod's cache."""
    return [s.label for s in sources if getattr(s, "from_runpod_cache", False)]


def describe(name: str, sources: list[Source]) -> str:
    """`name`, saying which of its files come from Runpod's cache, for progress messages."""
    cached = cached_labels(sources)
    if not cached:
        return name
    if len(cached) == len(sources):
        return f"{name} {FROM_CACHE}"
    return f"{name} ({', '.join(cached)} from Runpod's model cache, no download)"
