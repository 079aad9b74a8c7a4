"""Job inputs (pydantic, unknown fields refused) and the structured error a bad input gets.

Returning `{"error": ...}` from the handler makes the runpod SDK mark the job FAILED while the
worker keeps serving; the error names the offending fields, like the control plane's 422s.
The error is a JSON *string*: Runpod is reported to show a job whose `error` is an object as
COMPLETED with no output (runpod-python issue #299), and the SDK itself sends its own handler
exceptions as `json.dumps(...)` strings (runpod/serverless/modules/rp_job.py, `run_job`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

_SPACES = re.compile(r"\s+")
_DIGITS_ONLY = re.compile(r"[\d\s.,+-]+")

# The control plane queues exactly this right after creating an endpoint: on Runpod a flex
# worker's container starts only once a job waits, so this job is what boots the worker (and
# its ready callback). It is answered without touching the pipeline.
WARMUP_INPUT: dict[str, Any] = {"warmup": True}
WARMUP_OUTPUT: dict[str, Any] = {"warmup": "ok"}


def is_warmup(raw: Any) -> bool:
    """True only for `{"warmup": true}` itself (not `1`, not with other fields): anything else
    goes through the strict job schema, so `{"warmup": true, "text": ...}` is refused."""
    return isinstance(raw, dict) and raw.keys() == WARMUP_INPUT.keys() and raw["warmup"] is True


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", text.strip().lower())


@dataclass(frozen=True)
class QualityProfile:
    image_steps: int  # SDXL Turbo: 1 to 4 steps are what it was distilled for
    part_steps: int  # PartCrafter denoising steps (its script's default: 50)
    part_tokens: int  # PartCrafter latent tokens per part (its script's default: 1024)
    mesh_steps: int  # Hunyuan3D-2 Turbo: 5 is its documented setting
    points_per_part: int


QUALITY: dict[str, QualityProfile] = {
    "fast": QualityProfile(1, 20, 512, 5, 512),
    "standard": QualityProfile(2, 50, 1024, 5, 2048),
    "high": QualityProfile(4, 50, 2048, 10, 8192),
}


class PartsJobInput(BaseModel):
    """Input of the 3D pipeline (`HF_MODEL_ID=lumen/3d-pipeline`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(..., min_length=1, max_length=200, description="What to make.")
    quality: Literal["fast", "standard", "high"] = "standard"
    # strict: `true`, `"3"` and `3.0` are refused rather than quietly read as 1 or 3
    num_parts: int | None = Field(
        None,
        ge=1,
        le=16,
        strict=True,
        description="Default: as many as the concept's template has.",
    )
    verb: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z][A-Za-z '\-]*$",
        description="A pose or action, e.g. `sitting`.",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True)
    return_glb: bool = Field(False, description="Also return the parts as one GLB (base64).")
    return_image: bool = Field(False, description="Also return the generated image (base64 PNG).")

    @field_validator("text")
    @classmethod
    def _describes_something(cls, value: str) -> str:
        if not any(ch.isalnum() for ch in value):
            raise PydanticCustomError(
                "no_alphanumeric", "text must describe an object: it has no letter or digit"
            )
        if _DIGITS_ONLY.fullmatch(value):
            raise PydanticCustomError(
                "digits_only", "text must describe an object, not only digits"
            )
        return value

    def cache_key(self) -> str:
        data = self.model_dump()
        data["text"] = _normalize(self.text)
        data["verb"] = _normalize(self.verb) if self.verb else None
        return "parts:" + json.dumps(data, sort_keys=True)


class ImageJobInput(BaseModel):
    """Input of a plain text-to-image deployment (any other `HF_MODEL_ID`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(..., min_length=1, max_length=2000)
    num_inference_steps: int | None = Field(None, ge=1, le=100)
    width: int | None = Field(None, ge=64, le=2048, multiple_of=8)
    height: int | None = Field(None, ge=64, le=2048, multiple_of=8)
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True)
    guidance_scale: float | None = Field(None, ge=0, le=30)

    def cache_key(self) -> str:
        data = self.model_dump()
        data["prompt"] = _normalize(self.prompt)
        return "image:" + json.dumps(data, sort_keys=True)


def validation_fields(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "input",
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]


def validation_error(exc: ValidationError) -> dict[str, Any]:
    fields = validation_fields(exc)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_body("ValidationError", f"invalid input: {summary}", fields=fields)


def error_body(
    type_: str, message: str, *, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """`{"error": "<JSON of type, message[, fields]>"}`: a string (see the module docstring)
    that a client can still parse back into its parts."""
    detail: dict[str, Any] = {"type": type_, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return {"error": json.dumps(detail)}
