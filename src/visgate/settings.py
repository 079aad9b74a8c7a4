"""Every setting of the control plane, read once from the environment.

The env names are part of the contract (README, "Configuration"). Bad values stop start-up with a
message naming the variable; the README's configuration table is generated from this class.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class StoreKind(StrEnum):
    sqlite = "sqlite"
    firestore = "firestore"


class SecretsKind(StrEnum):
    local = "local"
    secret_manager = "secret-manager"  # noqa: S105 (a backend name, not a secret)


class ProviderKind(StrEnum):
    runpod = "runpod"
    local = "local"


class RunpodApi(StrEnum):
    """Which Runpod control API makes templates and endpoints (jobs use the endpoint API
    either way). GraphQL is retired by Runpod in early 2027; REST v2 is its successor."""

    graphql = "graphql"
    rest = "rest"


_PLACEHOLDERS = {"changeme", "change-me", "secret", "placeholder", "xxx"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    store: StoreKind = Field(
        StoreKind.sqlite,
        validation_alias="STORE",
        description="Record store: `sqlite` (embedded file) or `firestore`.",
    )
    db_path: Path = Field(
        Path(".visgate/visgate.db"),
        validation_alias="VISGATE_DB_PATH",
        description="SQLite file for `STORE=sqlite` (created with its folder).",
    )
    gcp_project_id: str | None = Field(
        None,
        validation_alias=AliasChoices("GCP_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"),
        description="Google Cloud project for Firestore and Secret Manager.",
    )
    firestore_emulator_host: str | None = Field(
        None,
        validation_alias="FIRESTORE_EMULATOR_HOST",
        description="host:port of a Firestore emulator (tests, local runs).",
    )
    firestore_collection_prefix: str = Field(
        "",
        validation_alias="FIRESTORE_COLLECTION_PREFIX",
        description="Prefix for Firestore collection names (several installs in one project).",
    )
    secrets: SecretsKind = Field(
        SecretsKind.local,
        validation_alias="SECRETS",
        description="User secret store: `local` (Fernet-encrypted file) or `secret-manager`.",
    )
    secret_key: SecretStr | None = Field(
        None,
        validation_alias="VISGATE_SECRET_KEY",
        description="Fernet key for `SECRETS=local`; a 0600 key file is made beside the data if unset.",
    )
    runpod_graphql_url: str = Field(
        "https://api.runpod.io/graphql",
        validation_alias="RUNPOD_GRAPHQL_URL",
        description="Runpod GraphQL API.",
    )
    runpod_api: RunpodApi = Field(
        RunpodApi.graphql,
        validation_alias="RUNPOD_API",
        description="`graphql`, or `rest` (Runpod REST API v2, the successor of GraphQL).",
    )
    runpod_rest_url: str = Field(
        "https://api.runpod.io/v2",
        validation_alias="RUNPOD_REST_URL",
        description="Runpod REST API v2 base (templates, endpoints, GPU catalogue).",
    )
    runpod_api_base: str = Field(
        "https://api.runpod.ai/v2",
        validation_alias="RUNPOD_API_BASE",
        description="Runpod serverless endpoint API.",
    )
    runpod_api_key: SecretStr | None = Field(
        None,
        validation_alias="RUNPOD_API_KEY",
        description="Operator Runpod key, used when a request brings none.",
    )
    runpod_template_image: str | None = Field(
        None,
        validation_alias="RUNPOD_TEMPLATE_IMAGE",
        description="The worker image deployments run (e.g. `REGION-docker.pkg.dev/P/visgate/worker:TAG`).",
    )
    runpod_registry_auth_id: str | None = Field(
        None,
        validation_alias="RUNPOD_REGISTRY_AUTH_ID",
        description="Runpod container registry credential id that can pull a private worker image.",
    )
    hf_endpoint: str = Field(
        "https://huggingface.co",
        validation_alias="HF_ENDPOINT",
        description="Hugging Face hub base URL (tests point it at a fake hub).",
    )
    hf_hub_offline: bool = Field(
        False,
        validation_alias="HF_HUB_OFFLINE",
        description="With `1`, the model registry's data stands alone (no hub calls).",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8080",
        validation_alias="PUBLIC_BASE_URL",
        description="Where the worker reaches this service (its callback URL is built from it).",
    )
    internal_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias="INTERNAL_WEBHOOK_SECRET",
        description="Key for per-deployment callback tokens; generated into the data folder if unset (one machine only: required, the same everywhere, with STORE=firestore).",
    )
    webhook_allow_private_urls: bool = Field(
        False,
        validation_alias="WEBHOOK_ALLOW_PRIVATE_URLS",
        description="Allow loopback/private/link-local webhook targets (local runs and tests).",
    )
    rate_limit_per_minute: int = Field(
        100,
        ge=1,
        validation_alias="RATE_LIMIT_PER_MINUTE",
        description="Requests per minute per API key.",
    )
    tenant_max_deployments: int = Field(
        10,
        ge=1,
        validation_alias="TENANT_MAX_DEPLOYMENTS",
        description="Active (not deleted, not failed and cleaned up) deployments per tenant, unless its key says otherwise.",
    )
    tenant_max_workers: int = Field(
        5,
        ge=1,
        validation_alias="TENANT_MAX_WORKERS",
        description="Sum of `max_workers` over a tenant's active deployments, unless its key says otherwise (Runpod's own account default is 5).",
    )
    ready_timeout_seconds: int = Field(
        900,
        ge=10,
        validation_alias="READY_TIMEOUT_SECONDS",
        description="A deployment not ready by then fails and is torn down.",
    )
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000],
        validation_alias="WEBHOOK_RETRY_SCHEDULE",
        description="Seconds between user-webhook attempts, comma-separated.",
    )
    provider: ProviderKind = Field(
        ProviderKind.runpod,
        validation_alias="PROVIDER",
        description="`runpod`, or `local` (the worker as a local process; no cloud).",
    )
    log_level: str = Field(
        "info", validation_alias="LOG_LEVEL", description="debug, info, warning or error."
    )
    reconciler_enabled: bool = Field(
        True,
        validation_alias="VISGATE_RECONCILER",
        description="Run the reconciler inside `visgate serve` (off: API only).",
    )
    reconciler_concurrency: int = Field(
        32,
        ge=1,
        validation_alias="VISGATE_RECONCILER_CONCURRENCY",
        description="Steps one reconciler process runs at once.",
    )
    lease_seconds: float = Field(
        60.0,
        gt=1,
        validation_alias="VISGATE_LEASE_SECONDS",
        description="How long a reconciler holds a record before another may take it.",
    )
    delivery_lease_seconds: float = Field(
        60.0,
        gt=1,
        validation_alias="VISGATE_DELIVERY_LEASE_SECONDS",
        description="How long a webhook delivery is held before another instance may send it; a send in progress keeps extending it.",
    )
    delivery_concurrency: int = Field(
        32,
        ge=1,
        validation_alias="VISGATE_DELIVERY_CONCURRENCY",
        description="Webhook sends one process makes at once.",
    )
    poll_interval_seconds: float = Field(
        1.0,
        gt=0,
        validation_alias="VISGATE_POLL_INTERVAL",
        description="Longest idle wait between reconciler polls.",
    )
    health_poll_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias="VISGATE_HEALTH_POLL_SECONDS",
        description="How often a loading deployment's endpoint health is read.",
    )
    sweep_interval_seconds: float = Field(
        600.0,
        ge=0,
        validation_alias="VISGATE_SWEEP_INTERVAL",
        description="How often the orphan sweeper lists provider endpoints; `0` turns sweeping off.",
    )
    trusted_proxy_hops: int = Field(
        1,
        ge=0,
        le=10,
        validation_alias="VISGATE_TRUSTED_PROXY_HOPS",
        description="Proxies in front that append to `X-Forwarded-For`: the client address is that many entries from the right (Cloud Run: 1; behind an external load balancer too: 2; nothing in front: 0).",
    )
    event_streams_per_key: int = Field(
        10,
        ge=1,
        validation_alias="VISGATE_EVENT_STREAMS_PER_KEY",
        description="Open `/events` streams one API key may hold on one instance; more answer 429.",
    )
    event_streams_max: int = Field(
        200,
        ge=1,
        validation_alias="VISGATE_EVENT_STREAMS_MAX",
        description="Open `/events` streams one instance serves in all; keep it under the platform's request concurrency.",
    )
    console_session_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        validation_alias="VISGATE_CONSOLE_SESSION_SECONDS",
        description="How long a web console sign-in lasts; the session also ends at sign-out and when its API key is revoked.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        validation_alias="VISGATE_METRICS_TOKEN",
        description="Bearer token `/metrics` asks for; unset, `/metrics` answers only on loopback (a sidecar scraper, a local run).",
    )
    max_body_bytes: int = Field(
        64 * 1024,
        ge=1024,
        validation_alias="VISGATE_MAX_BODY_BYTES",
        description="Largest request body.",
    )

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return [float(p) for p in parts]
            except ValueError as exc:
                raise ValueError(
                    "WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. 5,300,1800"
                ) from exc
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: list[float]) -> list[float]:
        if not value:  # e.g. "," : almost surely a mistake, and it would mean no retries
            raise ValueError(
                "WEBHOOK_RETRY_SCHEDULE lists no delay: give at least one, e.g. 5,300,1800"
            )
        if any(v < 0 for v in value):
            raise ValueError("WEBHOOK_RETRY_SCHEDULE values must be >= 0")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("LOG_LEVEL must be debug, info, warning or error")
        return value.lower()

    @field_validator(
        "public_base_url", "runpod_graphql_url", "runpod_rest_url", "runpod_api_base", "hf_endpoint"
    )
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_combination(self) -> Settings:
        if self.store is StoreKind.firestore and not (
            self.gcp_project_id or self.firestore_emulator_host
        ):
            raise ValueError("STORE=firestore needs GCP_PROJECT_ID (or FIRESTORE_EMULATOR_HOST)")
        if self.secrets is SecretsKind.secret_manager and not self.gcp_project_id:
            raise ValueError("SECRETS=secret-manager needs GCP_PROJECT_ID")
        secret = self.internal_webhook_secret
        if secret is not None and secret.get_secret_value().lower() in _PLACEHOLDERS:
            raise ValueError("INTERNAL_WEBHOOK_SECRET is a placeholder: set a random value")
        return self

    @property
    def data_dir(self) -> Path:
        return self.db_path.parent


class SettingsError(Exception):
    """Start-up refused: a setting is missing or malformed (message names the variable)."""


def check_serving(settings: Settings) -> None:
    """What a process that issues or checks worker callback tokens (`serve`, `worker`, the
    Cloud Run app) needs beyond what every command needs (`keys create` does not)."""
    if (
        settings.store is StoreKind.firestore
        and not settings.firestore_emulator_host
        and settings.internal_webhook_secret is None
    ):
        # Each instance would otherwise generate its own key file and refuse the callback
        # tokens the others issued (random 401s for workers).
        raise SettingsError(
            "STORE=firestore runs many instances: set INTERNAL_WEBHOOK_SECRET, the same on "
            "every instance (deploy.sh stores one in Secret Manager)"
        )


def load_settings(**overrides: object) -> Settings:
    """Read the environment; turn pydantic's report into one readable line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"{loc.upper()}: {err['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
