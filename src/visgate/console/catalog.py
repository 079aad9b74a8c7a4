"""The console's catalogue pages: the model registry and the GPU pools (VRAM, price, stock)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from visgate.console.pages import ConsoleRoute, VisitorDep, render, services_of
from visgate.console.views import money
from visgate.registry.gpus import public_gpus
from visgate.registry.models import public_models

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/models")
async def models_page(request: Request, visitor: VisitorDep) -> Response:
    return render(
        request,
        "models.html",
        {"title": "Models", "nav": "models", "models": public_models()},
        visitor=visitor,
    )


@router.get("/gpus")
async def gpus_page(request: Request, visitor: VisitorDep) -> Response:
    pools = public_gpus(services_of(request).catalogue)
    for pool in pools:
        per_second = pool.get("flex_usd_per_second")
        pool["price"] = money(per_second * 3600 if per_second else None, per_hour=True)
    return render(
        request, "gpus.html", {"title": "GPUs", "nav": "gpus", "pools": pools}, visitor=visitor
    )
