"""structlog JSON lines for the worker, with two guards against leaking secrets: fields whose
name says secret are dropped, and the known secret values are masked wherever they appear."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_WORDS = ("token", "secret", "password", "authorization", "api_key")
_secret_values: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values so that any log line containing one shows `[redacted]` instead."""
    _secret_values.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    """`text` with every registered secret value replaced (for error messages sent out)."""
    for secret in _secret_values:
        text = text.replace(secret, "[redacted]")
    return text


def _mask(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event_dict):
        if any(word in name.lower() for word in _SECRET_WORDS):
            event_dict[name] = "[redacted]"
        else:
            event_dict[name] = _mask(event_dict[name])
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines, on stdout unless told otherwise (Runpod shows both in the worker's log)."""
    stream = stream or sys.stdout
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(format="%(message)s", stream=stream, level=numeric, force=True)
    for noisy in ("httpx", "httpcore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )


def quiet_libraries() -> None:
    """Progress bars from diffusers/transformers/hub downloads would flood the worker log."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()
    except ImportError:
        pass
