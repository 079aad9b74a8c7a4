"""The console's deployment pages: the list, the create form, one deployment (live), delete
with confirmation, and the playground. Each page reads through the same store and service as
the API, scoped to the visitor's tenant: another tenant's deployment is a 404 here too."""

from __future__ import annotations

import time
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Query, Request, Response

from visgate.api.deps import require_deployment_id
from visgate.api.routers.deliveries import deliveries_of
from visgate.console.pages import (
    ConsoleRoute,
    VisitorDep,
    checked_form,
    go,
    render,
    services_of,
)
from visgate.console.views import (
    NEXT_STEPS_JSON,
    list_row,
    money,
    next_step,
    timeline,
    total_seconds,
)
from visgate.cost.report import cost_report
from visgate.deployments import service
from visgate.deployments.schemas import CreateDeployment
from visgate.domain.errors import ValidationError, VisgateError
from visgate.domain.status import SERVING, SETTLED, Status
from visgate.registry.gpus import public_gpus
from visgate.registry.model_data import BUNDLE_ID
from visgate.registry.models import public_models
from visgate.registry.regions import DATA_CENTERS, PREFIXES

router = APIRouter(prefix="/console/deployments", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 20
FORM_FIELDS = (
    "hf_model_id",
    "gpu_tier",
    "region",
    "max_workers",
    "ttl_seconds",
    "user_webhook_url",
    "user_runpod_key",
    "hf_token",
)
WHOLE_NUMBERS = ("max_workers", "ttl_seconds")
SECRET_FORM_FIELDS = ("user_runpod_key", "hf_token")  # never written back into the page


@router.get("")
async def deployments_page(
    request: Request,
    visitor: VisitorDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    services = services_of(request)
    wanted = Status(status) if status in Status.__members__ else None
    page = await services.store.deployments.list(
        tenant=visitor.tenant, status=wanted, limit=PAGE_SIZE, cursor=cursor or None
    )
    now = time.time()
    return render(
        request,
        "deployments.html",
        {
            "title": "Deployments",
            "nav": "deployments",
            "rows": [list_row(d, now, services.catalogue) for d in page.items],
            "statuses": [s.value for s in Status],
            "status": wanted.value if wanted else "",
            "next_cursor": page.next_cursor,
            "paged": bool(cursor),
        },
        visitor=visitor,
    )


def _form_context(request: Request, values: dict[str, str]) -> dict[str, Any]:
    services = services_of(request)
    return {
        "title": "New deployment",
        "nav": "new",
        "values": {k: v for k, v in values.items() if k not in SECRET_FORM_FIELDS},
        "models": [m["model_id"] for m in public_models()],
        "gpus": public_gpus(services.catalogue),
        "regions": {"Continents": list(PREFIXES), "Data centres": list(DATA_CENTERS)},
    }


@router.get("/new")
async def new_deployment_page(
    request: Request,
    visitor: VisitorDep,
    model: Annotated[str | None, Query(max_length=193)] = None,
) -> Response:
    values = {"hf_model_id": model or BUNDLE_ID, "max_workers": "1"}
    return render(request, "new.html", _form_context(request, values), visitor=visitor)


def _field_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """Pydantic's messages by form field: the same text the API's 422 `fields` carry."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][-1]) if err.get("loc") else "hf_model_id"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        errors.setdefault(field, message)
    return errors


def _parsed(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body: blank fields left out, whole numbers as numbers
    (anything else stays text, so the schema refuses it with its own message)."""
    body: dict[str, Any] = {}
    for name in FORM_FIELDS:
        value = form.get(name, "").strip()
        if not value:
            continue
        body[name] = (
            int(value) if name in WHOLE_NUMBERS and value.removeprefix("-").isdecimal() else value
        )
    return body


@router.post("/new")
async def create_deployment(request: Request, visitor: VisitorDep) -> Response:
    form = await checked_form(request)
    services = services_of(request)
    context = _form_context(request, {k: form.get(k, "") for k in FORM_FIELDS})
    try:
        body = CreateDeployment.model_validate(_parsed(form))
    except pydantic.ValidationError as exc:
        context.update(errors=_field_errors(exc), problem=None)
        return render(request, "new.html", context, status_code=422, visitor=visitor)
    try:
        dep = await service.create(services, body, visitor.key)
    except ValidationError as exc:
        fields = {f["field"]: f["message"] for f in exc.to_dict().get("fields") or []}
        context.update(errors=fields, problem=exc)
        return render(request, "new.html", context, status_code=422, visitor=visitor)
    except VisgateError as exc:
        context.update(errors={}, problem=exc)
        return render(request, "new.html", context, status_code=exc.status_code, visitor=visitor)
    return go(f"/console/deployments/{dep.id}")


@router.get("/{deployment_id}")
async def deployment_page(deployment_id: str, request: Request, visitor: VisitorDep) -> Response:
    require_deployment_id(deployment_id)
    services = services_of(request)
    dep = await services.store.deployments.get(deployment_id, tenant=visitor.tenant)
    public = dep.public()
    report = await cost_report(services, dep, time.time())
    return render(
        request,
        "deployment.html",
        {
            "title": dep.model_id,
            "nav": "deployments",
            "dep": public,
            "phases": timeline(dep),
            "total": total_seconds(dep),
            "settled": dep.status in SETTLED,
            "serving": dep.status in SERVING,
            "deletable": dep.status not in (Status.deleting, Status.deleted),
            "next_step": next_step(dep.error.type) if dep.error else None,
            "next_steps": NEXT_STEPS_JSON,
            "logs": public["logs"][-100:],
            "cost": {
                "price": money(report["price_per_hour"], per_hour=True),
                "workers": report["workers"],
                "spend": money(report["spend"]),
                "source": report["spend_source"],
            },
            "deliveries": await deliveries_of(services, dep),
        },
        visitor=visitor,
    )


@router.get("/{deployment_id}/delete")
async def confirm_delete_page(
    deployment_id: str, request: Request, visitor: VisitorDep
) -> Response:
    require_deployment_id(deployment_id)
    dep = await services_of(request).store.deployments.get(deployment_id, tenant=visitor.tenant)
    return render(
        request,
        "delete.html",
        {"title": f"Delete {dep.model_id}", "nav": "deployments", "dep": dep.public()},
        visitor=visitor,
    )


@router.post("/{deployment_id}/delete")
async def delete_deployment(deployment_id: str, request: Request, visitor: VisitorDep) -> Response:
    require_deployment_id(deployment_id)
    await checked_form(request)
    await service.request_delete(services_of(request), deployment_id, visitor.tenant)
    return go(f"/console/deployments/{deployment_id}")


@router.get("/{deployment_id}/playground")
async def playground_page(deployment_id: str, request: Request, visitor: VisitorDep) -> Response:
    require_deployment_id(deployment_id)
    dep = await services_of(request).store.deployments.get(deployment_id, tenant=visitor.tenant)
    return render(
        request,
        "playground.html",
        {
            "title": f"Playground · {dep.model_id}",
            "nav": "deployments",
            "dep": dep.public(),
            "serving": dep.status in SERVING,
            "kind": "3d" if dep.model_id == BUNDLE_ID else "image",
        },
        visitor=visitor,
    )
