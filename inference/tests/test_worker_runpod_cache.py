"""Runpod's cached models: a repo already in `RUNPOD_MODEL_CACHE_DIR` (hub cache layout) loads
from its snapshot with no download and says so in the progress callback; an absent or
incomplete entry falls back to the usual download."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from visgate_worker import handler
from visgate_worker.demo import DETECTOR, SAM2, TEXT_TO_IMAGE, demo_root
from visgate_worker.loading import startup
from visgate_worker.model_set import real_model_set
from visgate_worker.models.hunyuan import DIT_SUBFOLDER, HUNYUAN_REPO, VAE_SUBFOLDER
from visgate_worker.models.runpod_cache import DEFAULT_RUNPOD_CACHE, find_snapshot
from visgate_worker.settings import WorkerSettings
from visgate_worker.vram import pick_device

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_REPO = "visgate-test/tiny-text-to-image"


def lay_out(
    root: Path, repo_id: str, files: dict[str, bytes], *, commit: str = COMMIT, ref: bool = True
) -> Path:
    """`repo_id` in the hub cache layout under `root` (blobs, snapshot symlinks, refs/main), as
    Runpod leaves it; returns the snapshot folder."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
    return snapshot


def folder_files(folder: Path, *, variant: str | None = None) -> dict[str, bytes]:
    """A built model folder's files; `variant` renames weights as diffusers' variants are."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if variant and name.endswith(".safetensors"):
            name = name.removesuffix(".safetensors") + f".{variant}.safetensors"
        files[name] = path.read_bytes()
    return files


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_size)
        for p in root.rglob("*")
    }


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hub download entry point fails the test if called (Failed is a BaseException: no
    `except Exception` in the worker can swallow it)."""
    import diffusers
    import huggingface_hub
    import huggingface_hub.file_download

    from visgate_worker.models import sources

    calls: list[str] = []

    def refuse(name: str):
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            pytest.fail(f"{name} was called: the model should come from Runpod's cache")

        return call

    monkeypatch.setattr(sources, "snapshot_download", refuse("snapshot_download"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse("snapshot_download"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse("hf_hub_download"))
    monkeypatch.setattr(huggingface_hub.file_download, "hf_hub_download", refuse("hf_hub_download"))
    monkeypatch.setattr(
        diffusers.DiffusionPipeline, "download", refuse("DiffusionPipeline.download")
    )
    return calls


@pytest.fixture
def runpod_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runpod-volume" / "huggingface-cache" / "hub"
    root.mkdir(parents=True)
    monkeypatch.setenv("RUNPOD_MODEL_CACHE_DIR", str(root))
    return root


def test_runpod_cache_dir_defaults_to_runpods_path_and_env_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert WorkerSettings().runpod_model_cache_dir == DEFAULT_RUNPOD_CACHE
    assert DEFAULT_RUNPOD_CACHE == Path("/runpod-volume/huggingface-cache/hub")
    monkeypatch.setenv("RUNPOD_MODEL_CACHE_DIR", str(tmp_path))
    assert WorkerSettings().runpod_model_cache_dir == tmp_path


def test_model_in_runpod_cache_loads_from_its_snapshot_without_download(
    tmp_path: Path, runpod_cache: Path, model_cache: Path, callback_receiver, downloads
) -> None:
    snapshot = lay_out(
        runpod_cache, TINY_REPO, folder_files(demo_root(model_cache) / TEXT_TO_IMAGE)
    )
    before = tree_state(runpod_cache)
    settings = WorkerSettings(
        hf_model_id=TINY_REPO,
        model_cache_dir=tmp_path / "models",
        visgate_webhook=callback_receiver.url,
        torch_num_threads=2,
    )  # VISGATE_DEMO_MODELS unset: the cached real model must win over the demo set
    with capture_logs() as logs:
        loaded = startup(settings)
    assert not loaded.demo and loaded.models_loaded == [TINY_REPO]
    assert callback_receiver.statuses() == ["loading_model", "ready"]
    assert callback_receiver.received[0].body["message"] == (
        f"loading {TINY_REPO} from Runpod's model cache (no download)"
    )
    assert loaded.model_set.text_to_image.fetch() == [snapshot.resolve()]
    assert any(e["event"] == "model_from_runpod_cache" for e in logs)
    out = handler.handle_job({"id": "img", "input": {"prompt": "a cat", "width": 64}})
    assert out["image"] and not downloads
    assert tree_state(runpod_cache) == before  # Runpod's folder is never written
    assert not (tmp_path / "models" / "hub").exists()


def test_3d_bundle_components_load_from_runpod_cache(
    tmp_path: Path, runpod_cache: Path, model_cache: Path, callback_receiver, downloads
) -> None:
    demo = demo_root(model_cache)
    sdxl = lay_out(
        runpod_cache,
        "stabilityai/sdxl-turbo",
        folder_files(demo / TEXT_TO_IMAGE, variant="fp16"),
    )
    partcrafter = lay_out(runpod_cache, "wgsxm/PartCrafter", {"model_index.json": b"{}"})
    hunyuan = lay_out(
        runpod_cache,
        HUNYUAN_REPO,
        {f"{sub}/config.yaml": sub.encode() for sub in (DIT_SUBFOLDER, VAE_SUBFOLDER)},
    )
    detector = lay_out(
        runpod_cache, "IDEA-Research/grounding-dino-tiny", folder_files(demo / DETECTOR)
    )
    sam = lay_out(runpod_cache, "facebook/sam2.1-hiera-large", folder_files(demo / SAM2))
    before = tree_state(runpod_cache)
    settings = WorkerSettings(
        model_cache_dir=tmp_path / "models",
        visgate_webhook=callback_receiver.url,
        eager_load_all=True,
        torch_num_threads=2,
    )
    models = real_model_set(settings, pick_device())
    built: dict[str, Path] = {}

    def partcrafter_factory(path: Path, device: object) -> object:
        built["partcrafter"] = path
        return object()

    def hunyuan_factory(models_root: Path, device: object) -> object:
        built["hy3dgen_root"] = models_root  # what HY3DGEN_MODELS is set to
        return object()

    models.part_generator._factory = partcrafter_factory  # type: ignore[union-attr]
    models.mesh_generator._factory = hunyuan_factory  # type: ignore[union-attr]
    loaded = startup(settings, model_set=models)

    note = "from Runpod's model cache (no download)"
    assert callback_receiver.statuses() == ["loading_model", "loading_model", "ready"]
    assert [r.body.get("message") for r in callback_receiver.received[:2]] == [
        f"loading stabilityai/sdxl-turbo {note}, wgsxm/PartCrafter {note}",
        f"loading fallback tencent/Hunyuan3D-2:turbo {note}, "
        f"IDEA-Research/grounding-dino-tiny+facebook/sam2.1-hiera-large {note}",
    ]
    assert len(loaded.models_loaded) == 4 and not downloads
    assert models.text_to_image.fetch() == [sdxl.resolve()]
    assert built["partcrafter"] == partcrafter.resolve()
    assert models.segmenter.fetch() == [detector.resolve(), sam.resolve()]  # type: ignore[union-attr]
    # hy3dgen finds `$HY3DGEN_MODELS/tencent/Hunyuan3D-2/<subfolder>`: a link to the snapshot,
    # made under MODEL_CACHE_DIR
    repo = built["hy3dgen_root"] / HUNYUAN_REPO
    assert built["hy3dgen_root"].is_relative_to(tmp_path / "models")
    assert repo.is_symlink() and repo.resolve() == hunyuan.resolve()
    assert (repo / DIT_SUBFOLDER / "config.yaml").read_bytes() == DIT_SUBFOLDER.encode()
    assert tree_state(runpod_cache) == before
    assert not (tmp_path / "models" / "hub").exists()


def _break(root: Path, how: str) -> str | None:
    """Leave TINY_REPO in `root` as `how` says; the reason the worker should log, if any."""
    if how == "absent":
        return None
    if how == "refs_main_names_a_missing_snapshot":
        snapshot = lay_out(root, TINY_REPO, {"model_index.json": b"{}"})
        shutil.rmtree(snapshot)
        return "missing commit hashes"
    if how == "empty_snapshot":
        lay_out(root, TINY_REPO, {})
        return f"snapshot {COMMIT} is empty"
    if how == "broken_blob_link":
        snapshot = lay_out(root, TINY_REPO, {"model_index.json": b"{}"})
        (snapshot / "model_index.json").resolve().unlink()
        return "Blob missing"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["absent", "refs_main_names_a_missing_snapshot", "empty_snapshot", "broken_blob_link"],
)
def test_absent_or_incomplete_cache_entry_downloads_as_before(
    how: str,
    tmp_path: Path,
    runpod_cache: Path,
    model_cache: Path,
    callback_receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import diffusers
    from huggingface_hub.errors import LocalEntryNotFoundError

    reason = _break(runpod_cache, how)
    calls: list[dict[str, Any]] = []
    fetched = demo_root(model_cache) / TEXT_TO_IMAGE

    def download(repo_id: str, **kwargs: Any) -> str:  # the hub, without the network
        calls.append({"repo_id": repo_id, **kwargs})
        if kwargs["local_files_only"]:
            raise LocalEntryNotFoundError("not in MODEL_CACHE_DIR yet")
        return str(fetched)

    monkeypatch.setattr(diffusers.DiffusionPipeline, "download", download)
    settings = WorkerSettings(
        hf_model_id=TINY_REPO,
        model_cache_dir=tmp_path / "models",
        visgate_webhook=callback_receiver.url,
        visgate_demo_models=False,
        torch_num_threads=2,
    )
    with capture_logs() as logs:
        loaded = startup(settings)
    assert callback_receiver.statuses() == ["downloading_model", "loading_model", "ready"]
    assert [r.body["message"] for r in callback_receiver.received[:2]] == [
        f"fetching {TINY_REPO}",
        f"loading {TINY_REPO}",
    ]
    assert loaded.model_set.text_to_image.fetch() == [fetched]
    downloaded = [c for c in calls if not c["local_files_only"]]
    assert len(downloaded) == 1 and downloaded[0]["cache_dir"] == tmp_path / "models" / "hub"
    incomplete = [e for e in logs if e["event"] == "runpod_cache_entry_incomplete"]
    if reason is None:
        assert incomplete == []
    else:
        assert incomplete and all(reason in e["reason"] for e in incomplete)
        assert incomplete[0]["model"] == TINY_REPO


def test_snapshot_without_refs_main_is_used_only_when_it_is_the_only_one(
    runpod_cache: Path,
) -> None:
    only = lay_out(runpod_cache, TINY_REPO, {"model_index.json": b"{}"}, ref=False)
    assert find_snapshot(TINY_REPO, runpod_cache) == only.resolve()
    link = runpod_cache.parent / "hub-link"  # a root reached through a symlink works too
    link.symlink_to(runpod_cache, target_is_directory=True)
    assert find_snapshot(TINY_REPO, link) == only.resolve()
    lay_out(runpod_cache, TINY_REPO, {"model_index.json": b"{ }"}, commit="f" * 40, ref=False)
    with capture_logs() as logs:
        assert find_snapshot(TINY_REPO, runpod_cache) is None
    assert "no refs/main, and 2 snapshots" in logs[0]["reason"]
    assert find_snapshot("someone/else", runpod_cache) is None
    assert find_snapshot(TINY_REPO, runpod_cache / "nowhere") is None
