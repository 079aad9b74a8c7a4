"""`PerLoop`: one connection pool (an httpx client, a GraphQL session) per running event
loop, closed on that loop when the loop shuts down.

A pool's sockets belong to the loop that opened them: another loop (the CLI calls
`asyncio.run` more than once with one provider) cannot use them, and once their loop is
closed nothing can close them cleanly, because closing needs that loop. So each loop gets
its own pool, and the pool is tied to a suspended async generator: `asyncio.run` and
`asyncio.Runner` close every async generator still open while their loop still runs
(`loop.shutdown_asyncgens`), which closes the pool there. A loop closed by hand without
that step leaves its pool's sockets to the garbage collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_Held = dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]]


class PerLoop(Generic[T]):
    def __init__(
        self, open_: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]
    ) -> None:
        self._open = open_
        self._close = close
        self._held: _Held[T] = {}

    async def get(self) -> T:
        """The running loop's pool, opened on first use."""
        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is None:
            for ended in [other for other in self._held if other.is_closed()]:
                del self._held[ended]  # closed by hand: nothing can close its pool now
            pool = await self._open()
            held = self._held.get(loop)
            if held is not None:  # another task on this loop opened one meanwhile
                await self._close(pool)
            else:
                keeper = _close_at_loop_end(self._held, loop, pool, self._close)
                await anext(keeper)  # registered with the loop from here on
                held = self._held[loop] = (pool, keeper)
        return held[0]

    async def aclose(self) -> None:
        """Close the running loop's pool now; other loops' pools close when they end."""
        held = self._held.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held[1].aclose()


async def _close_at_loop_end(
    held: _Held[T],
    loop: asyncio.AbstractEventLoop,
    pool: T,
    close: Callable[[T], Awaitable[None]],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if loop in held and held[loop][0] is pool:
            del held[loop]
        await close(pool)
