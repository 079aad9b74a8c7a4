"""Runpod's REST API v2 contract, read from its published OpenAPI 3.1 document
(tests/data/runpod/openapi-v2.json), for the fake Runpod's REST routes (runpod_rest.py).

`match(method, path)` finds the documented operation; `check_request` validates path and
query parameters and the JSON body, `check_response` an answer, each against the schema the
document gives, with jsonschema's Draft 2020-12 validator (the document uses 3.1 features:
`unevaluatedProperties`, `if`/`then`, `oneOf` with a discriminator, `type: [..., "null"]`).
Problems come back as strings in Runpod's style: "$.gpu.count: got string, want integer".

The document is loaded once and every validator is compiled once per schema location, so
checking costs a schema walk per request and nothing more.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_PATH = Path(__file__).parents[1] / "data" / "runpod" / "openapi-v2.json"
_BASE = "urn:runpod:openapi-v2"  # the document has no $id: it is registered under this URI
_METHODS = ("get", "put", "post", "patch", "delete")
_UNEXPECTED = re.compile(r"\((.*) (?:was|were) unexpected\)")


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path", "query" or "header"
    required: bool
    pointer: str  # JSON pointer to its schema in the document
    is_array: bool
    explode: bool
    item_type: str | None  # the JSON type a query string is coerced to


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str  # "/v2/serverless/{id}"
    operation_id: str
    parameters: tuple[Parameter, ...]
    body_pointer: str | None  # JSON pointer to the application/json body schema
    body_required: bool
    responses: Mapping[str, Mapping[str, str | None]]  # status -> content type -> pointer


@functools.cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT_PATH.read_text())


@functools.cache
def _registry() -> Registry:
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(_BASE, resource)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local `$ref`s (`#/components/...`) to the node and its pointer."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        pointer = node["$ref"].removeprefix("#")
        node = document()
        for token in pointer.strip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def _json_type(schema: Any, pointer: str) -> str | None:
    schema, _ = _resolve(schema, pointer)
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _parameter(raw: Any, pointer: str) -> Parameter:
    node, pointer = _resolve(raw, pointer)
    schema, _ = _resolve(node.get("schema", {}), f"{pointer}/schema")
    is_array = schema.get("type") == "array"
    item_type = _json_type(schema.get("items", {}), "") if is_array else _json_type(schema, "")
    style = node.get("style", "form" if node["in"] == "query" else "simple")
    return Parameter(
        name=node["name"],
        location=node["in"],
        required=bool(node.get("required")),
        pointer=f"{pointer}/schema",
        is_array=is_array,
        explode=bool(node.get("explode", style == "form")),
        item_type=item_type,
    )


def _responses(raw: Mapping[str, Any], pointer: str) -> dict[str, dict[str, str | None]]:
    answers: dict[str, dict[str, str | None]] = {}
    for status, entry in raw.items():
        node, where = _resolve(entry, f"{pointer}/{status}")
        answers[status] = {
            kind: (f"{where}/content/{_escape(kind)}/schema" if "schema" in media else None)
            for kind, media in (node.get("content") or {}).items()
        }
    return answers


@functools.cache
def operations() -> tuple[Operation, ...]:
    found: list[Operation] = []
    for template, item in document()["paths"].items():
        base = f"/paths/{_escape(template)}"
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{base}/{method}"
            params = {
                (p.name, p.location): p
                for p in [_parameter(r, f"{base}/parameters/{i}") for i, r in enumerate(shared)]
                + [
                    _parameter(r, f"{where}/parameters/{i}")
                    for i, r in enumerate(op.get("parameters", []))
                ]
            }
            body, body_pointer = _resolve(op.get("requestBody"), f"{where}/requestBody")
            json_body = (body or {}).get("content", {}).get("application/json")
            found.append(
                Operation(
                    method=method.upper(),
                    template=template,
                    operation_id=op["operationId"],
                    parameters=tuple(params.values()),
                    body_pointer=(
                        f"{body_pointer}/content/application~1json/schema" if json_body else None
                    ),
                    body_required=bool((body or {}).get("required")),
                    responses=_responses(op.get("responses", {}), f"{where}/responses"),
                )
            )
    return tuple(found)


@functools.cache
def _routes() -> dict[int, list[tuple[tuple[str | None, ...], Operation]]]:
    """Operations by number of path segments; a `None` segment is a parameter. Literal
    segments sort first, so /v2/catalog/gpus wins over /v2/catalog/{x}."""
    table: dict[int, list[tuple[tuple[str | None, ...], Operation]]] = {}
    for op in operations():
        segments = tuple(
            None if s.startswith("{") else s for s in op.template.strip("/").split("/")
        )
        table.setdefault(len(segments), []).append((segments, op))
    for rows in table.values():
        rows.sort(key=lambda row: tuple(s is None for s in row[0]))
    return table


@functools.lru_cache(maxsize=1024)
def _match(method: str, path: str) -> tuple[Operation | None, bool]:
    parts = path.strip("/").split("/")
    known = False
    for segments, op in _routes().get(len(parts), []):
        if all(s is None or s == p for s, p in zip(segments, parts, strict=True)):
            known = True
            if op.method == method.upper():
                return op, True
    return None, known


def match(method: str, path: str) -> Operation | None:
    """The documented operation for this method and path (as sent, without the query)."""
    return _match(method, path)[0]


def path_is_documented(path: str) -> bool:
    """Whether some method is documented for this path (a 405 rather than a 404)."""
    return _match("-", path)[1]


def path_params(op: Operation, path: str) -> dict[str, str]:
    names = [s[1:-1] for s in op.template.strip("/").split("/")]
    parts = path.strip("/").split("/")
    return {n: p for n, p in zip(names, parts, strict=True) if n != p}


@functools.cache
def validator(pointer: str) -> Draft202012Validator:
    """A compiled validator for the schema at this JSON pointer of the document."""
    return Draft202012Validator(
        {"$ref": f"{_BASE}#{pointer}"},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _where(path: Iterable[Any], prefix: str = "$") -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _quote(values: Iterable[Any]) -> str:
    return ", ".join(f"'{v}'" if isinstance(v, str) else json.dumps(v) for v in values)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _leaf(error: ValidationError) -> ValidationError:
    """For `oneOf`/`anyOf`, the failure of the branch that was meant: the one the
    discriminator names, else jsonschema's best match."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        schema, instance = error.schema, error.instance
        chosen: list[ValidationError] = []
        discriminator = schema.get("discriminator") if isinstance(schema, dict) else None
        if discriminator and isinstance(instance, dict):
            target = discriminator.get("mapping", {}).get(
                instance.get(discriminator["propertyName"])
            )
            branches = schema.get(error.validator, [])
            index = next((i for i, b in enumerate(branches) if b.get("$ref") == target), None)
            chosen = [e for e in error.context if e.relative_schema_path[0] == index]
        picked = best_match(chosen or error.context)
        if picked is None:
            break
        error = picked
    return error


def _message(error: ValidationError, prefix: str) -> str:
    error = _leaf(error)
    where, kind, value = _where(error.absolute_path, prefix), error.validator, error.validator_value
    if kind in ("additionalProperties", "unevaluatedProperties"):
        found = _UNEXPECTED.search(error.message)
        names = re.findall(r"'([^']*)'", found.group(1)) if found else []
        if kind == "unevaluatedProperties":
            # A failing subschema evaluates nothing (JSON Schema drops its annotations), so
            # its valid properties read as unevaluated: name only the undeclared ones.
            names = [n for n in names if n not in _declared(id(error.schema), error.schema)]
        return f"{where}: additional properties {_quote(names)} not allowed" if names else ""
    if kind == "required":
        missing = re.match(r"'(.*)' is a required property", error.message)
        return f"{where}: missing property {_quote([missing.group(1) if missing else value])}"
    if kind == "dependentRequired":
        return f"{where}: {error.message}"
    if kind == "enum":
        return f"{where}: value must be one of {_quote(value)}"
    if kind == "const":
        return f"{where}: value must be {_quote([value])}"
    if kind == "type":
        want = " or ".join(value) if isinstance(value, list) else value
        return f"{where}: got {_type_name(error.instance)}, want {want}"
    if kind in ("oneOf", "anyOf"):
        return f"{where}: value does not match any of the allowed shapes"
    return f"{where}: {kind} {json.dumps(value)}: {error.message}"


_DECLARED: dict[int, frozenset[str]] = {}


def _declared(key: int, schema: Any) -> frozenset[str]:
    """Property names a schema declares anywhere (through `$ref`, `allOf`, `if`/`then`...)."""
    if key not in _DECLARED:
        names: set[str] = set()
        pending = [schema]
        while pending:
            node, _ = _resolve(pending.pop(), "")
            if isinstance(node, dict):
                names.update(node.get("properties", {}))
                for word in ("allOf", "anyOf", "oneOf"):
                    pending += node.get(word, [])
                pending += [node[w] for w in ("if", "then", "else") if w in node]
        _DECLARED[key] = frozenset(names)
    return _DECLARED[key]


@functools.lru_cache(maxsize=4096)
def _problems(pointer: str, canonical: str, prefix: str) -> tuple[str, ...]:
    found = validator(pointer).iter_errors(json.loads(canonical))
    return tuple(sorted({m for m in (_message(e, prefix) for e in found) if m}))


def problems(pointer: str, instance: Any, prefix: str = "$") -> list[str]:
    """Violations of the schema at `pointer`, in Runpod's wording, sorted by location.
    Verdicts are cached by the instance's canonical JSON: a client polling one endpoint
    gets the same answer many times, and a miss costs a full schema walk."""
    canonical = json.dumps(instance, sort_keys=True, separators=(",", ":"))
    return list(_problems(pointer, canonical, prefix))


def _coerce(text: str, kind: str | None) -> Any:
    """A query string as the JSON value its schema wants; left as text when it is not one,
    so the schema reports it."""
    if kind == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _query_value(param: Parameter, sent: Sequence[str]) -> Any:
    if not param.is_array:
        return _coerce(sent[-1], param.item_type)
    items = [part for s in sent for part in (s.split(",") if not param.explode else [s])]
    return [_coerce(i, param.item_type) for i in items]


def check_request(
    op: Operation,
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: Any,
) -> list[str]:
    """Everything wrong with a request, per the document: parameters (query values arrive
    as strings: they are coerced to the schema's type first; arrays follow the parameter's
    `style`/`explode`: comma-separated or repeated) and the JSON body (`None`: none sent)."""
    found: list[str] = []
    for param in op.parameters:
        if param.location == "path":
            sent: list[str] = [path_values[param.name]] if param.name in path_values else []
        elif param.location == "query":
            sent = [v for k, v in query if k == param.name]
        else:
            continue
        if not sent:
            if param.required:
                found.append(f"{param.location} parameter '{param.name}' is required")
            continue
        value = sent[0] if param.location == "path" else _query_value(param, sent)
        found += problems(param.pointer, value, prefix=f"{param.location}.{param.name}")
    if op.body_pointer is None:
        return found
    if body is None:
        if op.body_required:
            found.append("$: request body is required")
        return found
    return found + problems(op.body_pointer, body)


def check_response(op: Operation, status: int, content_type: str | None, body: Any) -> list[str]:
    """Everything wrong with an answer: its status must be documented (else `default`), its
    media type one the document lists for it, and its body must fit that media type's schema
    (`None`: no body)."""
    documented = op.responses.get(str(status))
    if documented is None:
        documented = op.responses.get("default")
        if documented is None:
            return [f"{op.operation_id}: status {status} is not documented"]
    media = (content_type or "").split(";")[0].strip().lower()
    if not documented:
        if body is None or body == b"" or body == "":
            return []
        return [f"{op.operation_id} {status}: the document says no body, one was sent"]
    if media not in documented:
        listed = ", ".join(documented)
        return [f"{op.operation_id} {status}: content type {media!r}, documented: {listed}"]
    pointer = documented[media]
    if pointer is None:
        return []
    return [f"{op.operation_id} {status}: {p}" for p in problems(pointer, body)]
