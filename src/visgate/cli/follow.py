"""`visgate deploy --wait`: follow one deployment's event stream in a live table until it
settles, reconnecting (Last-Event-ID) when the stream breaks, with phases timed by the
service's clock."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Column, Table
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from visgate.client import ApiError, VisgateClient
from visgate.kit import epoch

SETTLED = {"ready", "failed", "webhook_failed", "deleted"}
# How many times in a row the event stream may break off without bringing anything new
# before the command gives up (progress resets the count).
STREAM_RECONNECTS = 5
STREAM_BACKOFF = wait_exponential(multiplier=0.5, max=8) + wait_random(0, 1)


class PhaseDisplay:
    """A live table: one row per status reached, with the time spent in it and the line its
    status change wrote (the hub check and GPU memory, the pools chosen, the models loaded).

    Times come from the service's `event_at` of each status change, not from when the events
    arrived here: a reconnect, a slow network or attaching late would skew those. The phase
    still running is measured on the service's clock too, estimated as this machine's clock
    minus the smallest lag seen between an event's `event_at` and its arrival (which absorbs
    any clock skew between the two machines).
    """

    def __init__(self, model_id: str, deployment_id: str, clock: Any = time.time) -> None:
        self.title = f"{escape(model_id)}  [dim]{escape(deployment_id)}[/]"
        self.rows: list[list[Any]] = []  # [status, started, ended|None, note]
        self.notice = ""
        self._clock = clock
        self._lag: float | None = None

    def enter(self, status: str, at: float, note: str = "") -> None:
        lag = self._clock() - at
        self._lag = lag if self._lag is None else min(self._lag, lag)
        if self.rows and self.rows[-1][0] == status:
            return
        if self.rows and self.rows[-1][2] is None:
            self.rows[-1][2] = at
        self.rows.append([status, at, at if status in SETTLED else None, note])

    def total(self) -> float | None:
        """First status change to the settled one; None until settled."""
        if not self.rows or self.rows[-1][0] not in SETTLED:
            return None
        return float(self.rows[-1][1] - self.rows[0][1])

    def render(self) -> Table:
        table = Table(
            Column(no_wrap=True),
            Column(no_wrap=True),
            Column(no_wrap=True, justify="right"),
            Column(overflow="fold"),  # a long note wraps between words; nothing is cut off
            title=self.title,
            title_justify="left",
            show_header=False,
            box=None,
        )
        now = self._clock() - (self._lag or 0.0)  # the service's "now"
        for status, started, ended, note in self.rows:
            if ended is None:
                mark: Any = Spinner("dots")
            elif status in ("failed", "webhook_failed"):
                mark = "[red]✗[/]"
            else:
                mark = "[green]✓[/]"
            took = "" if status in SETTLED else _seconds((ended or now) - started)
            table.add_row(mark, escape(status), took, escape(note))
        if (total := self.total()) is not None:
            table.add_row("", "[bold]total[/]", _seconds(total), "")
        if self.notice:
            table.add_row("", "", "", f"[yellow]{escape(self.notice)}[/]")
        return table


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.1f} s"


class _StreamBroke(Exception):
    """The event stream ended before a settled status (dropped, timed out, closed early)."""


class _Follower:
    """Reads one deployment's status events into a PhaseDisplay. A broken stream is resumed
    with Last-Event-ID after a backoff; STREAM_RECONNECTS breaks in a row that bring nothing
    new end it (a break after progress starts the count again)."""

    def __init__(self, client: VisgateClient, deployment_id: str, display: PhaseDisplay) -> None:
        self.client = client
        self.deployment_id = deployment_id
        self.display = display
        self.last: dict[str, Any] = {}
        self.last_id: str | None = None
        self.fruitless = 0

    def run(self, live: Live) -> None:
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(_StreamBroke),
                stop=self._give_up,
                wait=STREAM_BACKOFF,
                before_sleep=self._announce,
                reraise=True,
            ):
                with attempt:
                    self._read_stream(live)
        except _StreamBroke as exc:
            raise ApiError(
                "ConnectionError",
                f"{exc} ({STREAM_RECONNECTS} reconnects brought nothing new); "
                f"`visgate status {self.deployment_id}` shows where it is",
                0,
            ) from exc
        self.display.notice = ""
        live.update(self.display.render())

    def _read_stream(self, live: Live) -> None:
        before = self.last_id
        try:
            for event in self.client.events(self.deployment_id, last_event_id=self.last_id):
                self.last, self.last_id = event, event["id"]
                at = epoch(event.get("event_at")) or time.time()
                self.display.enter(event["event_status"], at, event.get("event_message") or "")
                self.display.notice = ""
                live.update(self.display.render())
        except ApiError as exc:
            if exc.type not in ("ConnectionError", "TimeoutError"):
                raise
            self._count_break(before)
            raise _StreamBroke(exc.message) from exc
        if not (self.last and self.last["status"] in SETTLED):
            self._count_break(before)
            raise _StreamBroke("the event stream closed before the deployment settled")

    def _count_break(self, before: str | None) -> None:
        self.fruitless = 0 if self.last_id != before else self.fruitless + 1

    def _give_up(self, state: RetryCallState) -> bool:
        return self.fruitless > STREAM_RECONNECTS

    def _announce(self, state: RetryCallState) -> None:
        self.display.notice = f"event stream broke off; reconnecting (try {state.attempt_number})"


def follow(
    client: VisgateClient, deployment_id: str, model_id: str, *, console: Console, quiet: bool
) -> dict[str, Any]:
    """Show the live table on `console` until the deployment settles; return its record."""
    display = PhaseDisplay(model_id, deployment_id)
    try:
        with Live(display.render(), console=console, refresh_per_second=8, transient=quiet) as live:
            _Follower(client, deployment_id, display).run(live)
    finally:
        if not quiet and not console.is_terminal:
            console.line()  # Live ends its last frame with a newline only on terminals
    return client.get(deployment_id)
