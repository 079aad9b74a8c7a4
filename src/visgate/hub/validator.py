"""`HubValidator.check`: may this model be deployed with this token, and on how much VRAM.

Order of questions, each answered with a typed error from `visgate.domain.errors`:
exists (and readable with the token) → not disabled → gated access → weights a worker
can load → size. Registry entries supply measured VRAM; bundles check every component.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import structlog

from visgate.domain.errors import (
    HuggingFaceDisabledModelError,
    HuggingFaceError,
    HuggingFaceUnavailableError,
    HuggingFaceUnsupportedModelError,
)
from visgate.hub.cache import SingleFlightCache
from visgate.hub.client import HubClient, HubModel
from visgate.hub.estimate import classify, vram_gb, weights_bytes_from_parameters
from visgate.hub.translate import gated_error
from visgate.hub.weights import (
    is_diffusers_repo,
    only_unservable_formats,
    weights_bytes_from_files,
)
from visgate.registry.models import get_spec
from visgate.registry.specs import ModelSpec

log = structlog.get_logger(__name__)

Source = Literal["registry", "safetensors", "files"]


@dataclass(frozen=True, slots=True)
class ModelCheck:
    """A model that may be deployed, and what to provision for it."""

    model_id: str
    vram_gb: float  # what to provision
    weights_gb: float | None
    source: Source
    tasks: list[str]
    gated: bool
    components: list[str] = field(default_factory=list)  # hub repos of a bundle
    pipeline_tag: str | None = None
    library_name: str | None = None
    kind: str = "other"


def token_digest(token: str | None) -> str:
    """Cache key part: results depend on the token, but the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


class HubValidator:
    def __init__(
        self,
        endpoint: str,
        *,
        cache_ttl_s: float = 300,
        retry_attempts: int = 3,
        max_retry_wait: float = 10,
        offline: bool = False,
        timeout_s: float = 10.0,
        initial_retry_wait: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` times cache expiry (seconds, monotonic); a test passes its own to expire
        entries without waiting."""
        self.offline = offline
        self._client = HubClient(
            endpoint,
            timeout_s=timeout_s,
            retry_attempts=retry_attempts,
            max_retry_wait=max_retry_wait,
            initial_retry_wait=min(initial_retry_wait, max_retry_wait),
        )
        self._cache: SingleFlightCache[tuple[str, str], ModelCheck] = SingleFlightCache(
            cache_ttl_s, clock=clock
        )

    @property
    def endpoint(self) -> str:
        return self._client.endpoint

    async def check(self, model_id: str, token: str | None) -> ModelCheck:
        """Validate `model_id` (a hub repo or a registry bundle) for a deployment.

        Hub ids are case-insensitive, so `Org/Model` and `org/model` share one cache entry
        (and one hub call in a burst); each caller still gets the spelling it sent back,
        unless the registry names the model (then its canonical id)."""
        key = (model_id.lower(), token_digest(token))
        check = await self._cache.get_or_run(key, lambda: self._check(model_id, token))
        if check.source == "registry" or check.model_id == model_id:
            return check
        return replace(check, model_id=model_id)

    async def _check(self, model_id: str, token: str | None) -> ModelCheck:
        spec = get_spec(model_id)
        if self.offline:
            return _offline_check(model_id, spec, token)
        if spec is not None and spec.is_bundle:
            return await self._check_bundle(spec, token)
        model = await self._readable(model_id, token)
        if spec is not None:
            check = _from_spec(
                spec,
                gated=model.is_gated,
                pipeline_tag=model.pipeline_tag,
                library_name=model.library_name,
            )
        else:
            check = _estimate(model_id, model)
        log.info(
            "hub_model_checked",
            model_id=model_id,
            vram_gb=check.vram_gb,
            source=check.source,
            gated=check.gated,
        )
        return check

    async def _readable(self, model_id: str, token: str | None) -> HubModel:
        """Model info, after making sure the token (or no token) may download it."""
        model = await self._client.model(model_id, token)
        if model.disabled:
            raise HuggingFaceDisabledModelError(
                f"{model_id} has been disabled on the Hugging Face hub and cannot be downloaded"
            )
        if model.is_gated:
            if not token:
                raise gated_error(model_id, with_token=False)
            await self._client.check_access(model_id, token)
        return model

    async def _check_bundle(self, spec: ModelSpec, token: str | None) -> ModelCheck:
        ids = spec.component_ids
        results = await asyncio.gather(
            *(self._readable(c, token) for c in ids), return_exceptions=True
        )
        for component, result in zip(ids, results, strict=True):
            if isinstance(result, HuggingFaceError | HuggingFaceUnavailableError):
                # Same type (and so the same status and retry rule), named component.
                raise type(result)(
                    f"{spec.model_id} component {component}: {result.message}",
                    headers=result.headers,
                ) from result
            if isinstance(result, BaseException):
                raise result
        gated = any(isinstance(r, HubModel) and r.is_gated for r in results)
        log.info("hub_bundle_checked", model_id=spec.model_id, components=len(ids))
        return _from_spec(spec, gated=gated or spec.gated)


def _from_spec(
    spec: ModelSpec,
    *,
    gated: bool,
    pipeline_tag: str | None = None,
    library_name: str | None = None,
) -> ModelCheck:
    return ModelCheck(
        model_id=spec.model_id,
        vram_gb=spec.vram_gb,
        weights_gb=spec.weights_gb,
        source="registry",
        tasks=list(spec.tasks),
        gated=gated,
        components=list(spec.component_ids),
        pipeline_tag=pipeline_tag,
        library_name=library_name,
        kind=spec.kind,
    )


def _offline_check(model_id: str, spec: ModelSpec | None, token: str | None) -> ModelCheck:
    """HF_HUB_OFFLINE=1: the registry's data stands alone; nothing else can be sized."""
    if spec is None:
        raise HuggingFaceUnsupportedModelError(
            f"{model_id} is not in this control plane's model registry, and HF_HUB_OFFLINE=1 "
            "forbids asking the hub about it: deploy a model listed by GET /v1/models"
        )
    if spec.gated and not token:
        raise gated_error(spec.model_id, with_token=False)
    return _from_spec(spec, gated=spec.gated)


def _estimate(requested_id: str, model: HubModel) -> ModelCheck:
    """VRAM from safetensors metadata or weight files (see estimate.py for the formula)."""
    names = [f.name for f in model.files]
    kind = classify(model.library_name, model.pipeline_tag, model.tags, names)
    from_files = weights_bytes_from_files(model.files)
    from_params = weights_bytes_from_parameters(model.parameters) if model.parameters else None
    # A diffusers repo's safetensors metadata can describe only a root file (e.g. FLUX's
    # transformer-only checkpoint); its component folders are the whole pipeline.
    order: list[tuple[Literal["safetensors", "files"], int | None]] = [
        ("safetensors", from_params),
        ("files", from_files),
    ]
    if is_diffusers_repo(names):
        order.reverse()
    source, weights = next(((s, w) for s, w in order if w), (None, None))
    if source is None or weights is None:
        fmt = only_unservable_formats(names)
        reason = (
            f"it ships only {fmt} weights, which the worker cannot load"
            if fmt
            else "it holds no safetensors or PyTorch weight files"
        )
        raise HuggingFaceUnsupportedModelError(
            f"{requested_id} cannot be served: {reason}, and the model registry does not "
            "know it (GET /v1/models)"
        )
    return ModelCheck(
        model_id=requested_id,
        vram_gb=vram_gb(weights, kind),
        weights_gb=round(weights / 1e9, 2),
        source=source,
        tasks=[model.pipeline_tag] if model.pipeline_tag else [],
        gated=model.is_gated,
        pipeline_tag=model.pipeline_tag,
        library_name=model.library_name,
        kind=kind.value,
    )
