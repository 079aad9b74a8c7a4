"""A Secret Manager that speaks the real gRPC protocol on 127.0.0.1 (there is no emulator).

Built with `grpc` generic handlers and the client library's own proto-plus request and
response types, so the real `google-cloud-secret-manager` client (sync or async) talks to it
exactly as to Google: same method paths, same wire messages, same status codes. It keeps
secrets in memory and behaves like the service where our code could get it wrong:

- resource names come back with the project NUMBER, whatever the caller sent;
- CreateSecret needs a replication policy and valid label keys/values, and a second create
  of the same id is ALREADY_EXISTS; `versions/latest` of a secret with no version is NOT_FOUND;
- ListSecrets pages (small default page) and accepts only `labels.KEY=VALUE` / `labels.KEY:*`
  terms joined by spaces or AND: any other filter is INVALID_ARGUMENT.

Fault knobs: `fail_next(n, code)` answers the next n calls with `code` (UNAVAILABLE by
default); `deny(prefix)` answers PERMISSION_DENIED for any resource under `prefix`.
`calls` records each method name in order.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.secretmanager_v1 import (
    SecretManagerServiceAsyncClient,
    SecretManagerServiceClient,
    types,
)
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
    SecretManagerServiceGrpcTransport,
)
from google.protobuf import timestamp_pb2

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
PROJECT = "visgate-test"
PROJECT_NUMBER = "424242424242"
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_FILTER_TERM = re.compile(r"labels\.([a-z][a-z0-9_]*)(=|:)(\S+)")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Secret:
    name: str
    labels: dict[str, str]
    created: float
    versions: list[bytes] = field(default_factory=list)


class FakeSecretManager:
    def __init__(self, *, page_size: int = 2) -> None:
        self.page_size = page_size
        self.secrets: dict[str, _Secret] = {}  # by secret id (project has one namespace)
        self.calls: list[str] = []
        self._faults: list[tuple[grpc.StatusCode, str | None]] = []
        self._denied: list[str] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.address = ""

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeSecretManager:
        handlers = {
            "CreateSecret": (self._create_secret, types.CreateSecretRequest, types.Secret),
            "AddSecretVersion": (
                self._add_version,
                types.AddSecretVersionRequest,
                types.SecretVersion,
            ),
            "AccessSecretVersion": (
                self._access_version,
                types.AccessSecretVersionRequest,
                types.AccessSecretVersionResponse,
            ),
            "ListSecrets": (
                self._list_secrets,
                types.ListSecretsRequest,
                types.ListSecretsResponse,
            ),
            "GetSecret": (self._get_secret, types.GetSecretRequest, types.Secret),
            "DeleteSecret": (self._delete_secret, types.DeleteSecretRequest, None),
        }
        rpc = {
            method: grpc.unary_unary_rpc_method_handler(
                self._wrap(method, fn),
                request_deserializer=req.deserialize,
                # DeleteSecret answers google.protobuf.Empty: zero bytes on the wire.
                response_serializer=resp.serialize if resp is not None else (lambda _: b""),
            )
            for method, (fn, req, resp) in handlers.items()
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, rpc),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def async_client(self) -> SecretManagerServiceAsyncClient:
        """A real async client bound to this fake; call inside the running event loop."""
        channel = grpc.aio.insecure_channel(self.address)
        return SecretManagerServiceAsyncClient(
            transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
        )

    def sync_client(self) -> SecretManagerServiceClient:
        channel = grpc.insecure_channel(self.address)
        return SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel)
        )

    # --- knobs --------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        *,
        method: str | None = None,
    ) -> None:
        """The next n calls (of `method` only, if given) answer `code`."""
        with self._lock:
            self._faults.extend([(code, method)] * n)

    def deny(self, resource_prefix: str) -> None:
        """PERMISSION_DENIED for resources under the prefix (project id or number form)."""
        with self._lock:
            self._denied.append(self._canonical(resource_prefix))

    def seed(self, secret_id: str, value: bytes, labels: dict[str, str] | None = None) -> str:
        """Create a secret with one version directly (an operator secret made by deploy.sh)."""
        name = f"projects/{PROJECT_NUMBER}/secrets/{secret_id}"
        with self._lock:
            self.secrets[secret_id] = _Secret(name, dict(labels or {}), time.time(), [value])
        return name

    def count(self, method: str) -> int:
        return self.calls.count(method)

    # --- plumbing -----------------------------------------------------------------------

    def _wrap(
        self, method: str, fn: Callable[[Any], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.calls.append(method)
                fault = self._take_fault(method)
                try:
                    if fault is not None:
                        raise _Abort(fault, f"injected {fault.name}")
                    self._check_denied(method, request)
                    return fn(request)
                except _Abort as abort:
                    error = abort
            context.abort(error.code, error.message)

        return handler

    def _take_fault(self, method: str) -> grpc.StatusCode | None:
        for i, (code, only) in enumerate(self._faults):
            if only in (None, method):
                del self._faults[i]
                return code
        return None

    @staticmethod
    def _canonical(resource: str) -> str:
        """Accept the project id or number in names, as the real service does."""
        return re.sub(
            rf"^projects/({PROJECT}|{PROJECT_NUMBER})(?=/|$)",
            f"projects/{PROJECT_NUMBER}",
            resource,
        )

    def _check_denied(self, method: str, request: Any) -> None:
        resource = getattr(request, "name", "") or getattr(request, "parent", "")
        if method == "CreateSecret":
            resource = f"{request.parent}/secrets/{request.secret_id}"
        resource = self._canonical(resource)
        permission = {
            "CreateSecret": "secretmanager.secrets.create",
            "AddSecretVersion": "secretmanager.versions.add",
            "AccessSecretVersion": "secretmanager.versions.access",
            "ListSecrets": "secretmanager.secrets.list",
            "GetSecret": "secretmanager.secrets.get",
            "DeleteSecret": "secretmanager.secrets.delete",
        }[method]
        if any(resource.startswith(prefix) for prefix in self._denied):
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission '{permission}' denied for resource '{resource}' (or it may not exist).",
            )

    def _project(self, parent: str) -> None:
        if self._canonical(parent) != f"projects/{PROJECT_NUMBER}":
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Project {parent} not found.")

    def _find(self, secret_name: str) -> _Secret:
        canonical = self._canonical(secret_name)
        match = re.fullmatch(rf"projects/{PROJECT_NUMBER}/secrets/([^/]+)", canonical)
        secret = self.secrets.get(match.group(1)) if match else None
        if secret is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{canonical}] not found.")
        return secret

    @staticmethod
    def _message(secret: _Secret) -> types.Secret:
        created = timestamp_pb2.Timestamp()
        created.FromNanoseconds(int(secret.created * 1e9))
        return types.Secret(
            name=secret.name,
            labels=secret.labels,
            replication=types.Replication(automatic=types.Replication.Automatic()),
            create_time=created,
        )

    # --- methods ------------------------------------------------------------------------

    def _create_secret(self, request: types.CreateSecretRequest) -> types.Secret:
        self._project(request.parent)
        if not _SECRET_ID.fullmatch(request.secret_id):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "secret_id is invalid")
        if "replication" not in request.secret:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Secret.replication is required")
        labels = dict(request.secret.labels)
        for key, value in labels.items():
            if not (_LABEL_KEY.fullmatch(key) and _LABEL_VALUE.fullmatch(value)):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid label {key}={value}")
        if request.secret_id in self.secrets:
            raise _Abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"Secret [projects/{PROJECT_NUMBER}/secrets/{request.secret_id}] already exists.",
            )
        secret = _Secret(
            f"projects/{PROJECT_NUMBER}/secrets/{request.secret_id}", labels, time.time()
        )
        self.secrets[request.secret_id] = secret
        return self._message(secret)

    def _add_version(self, request: types.AddSecretVersionRequest) -> types.SecretVersion:
        secret = self._find(request.parent)
        secret.versions.append(bytes(request.payload.data))
        return types.SecretVersion(
            name=f"{secret.name}/versions/{len(secret.versions)}",
            state=types.SecretVersion.State.ENABLED,
        )

    def _access_version(
        self, request: types.AccessSecretVersionRequest
    ) -> types.AccessSecretVersionResponse:
        secret_name, _, version = self._canonical(request.name).rpartition("/versions/")
        secret = self._find(secret_name)
        if version == "latest":
            number = len(secret.versions)
        elif version.isdigit():
            number = int(version)
        else:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad version {version!r}")
        if not 1 <= number <= len(secret.versions):
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        return types.AccessSecretVersionResponse(
            name=f"{secret.name}/versions/{number}",
            payload=types.SecretPayload(data=secret.versions[number - 1]),
        )

    def _list_secrets(self, request: types.ListSecretsRequest) -> types.ListSecretsResponse:
        self._project(request.parent)
        wanted = self._parse_filter(request.filter)
        matching = [
            s
            for _, s in sorted(self.secrets.items())
            if all(
                (s.labels.get(k) == v) if op == "=" else (k in s.labels and v in ("*", s.labels[k]))
                for k, op, v in wanted
            )
        ]
        start = int(request.page_token or 0)
        size = request.page_size or self.page_size
        page = matching[start : start + size]
        next_token = str(start + size) if start + size < len(matching) else ""
        return types.ListSecretsResponse(
            secrets=[self._message(s) for s in page],
            next_page_token=next_token,
            total_size=len(matching),
        )

    @staticmethod
    def _parse_filter(text: str) -> list[tuple[str, str, str]]:
        terms = []
        for token in text.split():
            if token == "AND":
                continue
            match = _FILTER_TERM.fullmatch(token)
            if match is None:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported filter term {token!r}")
            terms.append((match.group(1), match.group(2), match.group(3).strip('"')))
        return terms

    def _get_secret(self, request: types.GetSecretRequest) -> types.Secret:
        return self._message(self._find(request.name))

    def _delete_secret(self, request: types.DeleteSecretRequest) -> None:
        secret = self._find(request.name)
        del self.secrets[secret.name.rsplit("/", 1)[1]]
