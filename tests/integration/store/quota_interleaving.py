"""Run concurrent quota operations in an interleaving a test picks, one store call at a time.

Every call an operation makes to the `DocumentBackend` waits at a gate; the `Scheduler`
lets exactly one waiting operation through at a time, chosen by the test (a Hypothesis
draw), and waits until it reaches its next call or ends. So any interleaving of the
operations' store calls can be produced, whatever the code under test does between them: an
operation made of several writes can be cut between any two, and one transaction cannot
be cut at all.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Operation = Callable[[], Awaitable[Any]]  # started when its first turn comes


class Scheduler:
    def __init__(self, choose: Callable[[int], int]) -> None:
        self.choose = choose  # how many are waiting -> which one goes next
        self.actors: set[asyncio.Task[Any]] = set()
        self.parked: dict[asyncio.Task[Any], asyncio.Future[None]] = {}
        self.moved: asyncio.Future[None] | None = None

    async def gate(self) -> None:
        """Wait for this operation's turn; tasks that are not operations (a keep-alive
        an operation started) pass at once."""
        task = asyncio.current_task()
        if task not in self.actors:
            return
        assert task is not None
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.parked[task] = turn
        if self.moved is not None and not self.moved.done():
            self.moved.set_result(None)
        await turn

    async def run(self, operations: list[Operation]) -> list[Any]:
        """Run the operations to their ends in a chosen interleaving; their results (or
        the first exception)."""

        async def actor(op: Operation) -> Any:
            await self.gate()
            return await op()

        tasks = [asyncio.create_task(actor(op)) for op in operations]
        self.actors = set(tasks)
        try:
            await asyncio.sleep(0)  # each starts and waits at its first gate
            assert len(self.parked) == len(tasks)
            while True:
                waiting = [t for t in tasks if t in self.parked]
                if not waiting:
                    break
                task = waiting[self.choose(len(waiting))]
                self.moved = asyncio.get_running_loop().create_future()
                self.parked.pop(task).set_result(None)
                await asyncio.wait([self.moved, task], return_when=asyncio.FIRST_COMPLETED)
                if task.done() and task.exception() is not None:
                    break  # the first failure ends the run
        finally:
            # The rest run on unscheduled, so what they do on the way out (an undo) ends.
            self.actors = set()
            for turn in self.parked.values():
                turn.set_result(None)
            self.parked.clear()
            done = await asyncio.gather(*tasks, return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result
        return done


class SteppedBackend:
    """A `DocumentBackend` whose every call first waits for the scheduler's go."""

    def __init__(self, inner: Any, scheduler: Scheduler) -> None:
        self._inner = inner
        self._scheduler = scheduler

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._scheduler.gate()
            return await attr(*args, **kwargs)

        return call
