"""Waiting for something another thread, task or process does: poll a probe until it holds,
up to a deadline. A test waits exactly as long as the thing takes (no fixed sleep that is
either too short on a loaded machine or wasted on a fast one), and a thing that never
happens fails with what was awaited."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 20.0
POLL_S = 0.01


def wait_for(
    probe: Callable[[], T],
    *,
    within: float = DEFAULT_TIMEOUT_S,
    what: str = "the condition",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `probe` until it returns something truthy, and return that; an exception in
    `ignoring` counts as not yet. Raises `AssertionError` naming `what` after `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = probe()
        except ignoring:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {within:g} s")
        time.sleep(POLL_S)


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    *,
    within: float = DEFAULT_TIMEOUT_S,
    what: str = "the condition",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """`wait_for` for a test on an event loop: `probe` may be async, and the loop keeps
    running (the server or task being waited on shares it) between tries."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except ignoring:
            value = None
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {within:g} s")
        await asyncio.sleep(POLL_S)
