"""What every `visgate` command shares: the two consoles (stdout carries a command's output,
stderr its progress and errors), the one-line `Type: message` error, `--json`, and the
SDK client session of the commands that call the service."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape

from visgate.client import ApiError, VisgateClient

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# A command ending on purpose (already reported): let these through the last-resort handlers.
# typer's own Exit/Abort are not click's subclasses in every typer version.
CLI_EXITS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    click.exceptions.Exit,
    click.exceptions.Abort,
    click.ClickException,
)


def print_error(type_: str, message: str) -> None:
    """`Type: message` on stderr, on one line however long (a terminal may still fold it),
    with the message's text kept verbatim: `[redacted]` or `list[int]` are not markup."""
    err_console.print(
        f"[bold red]{escape(type_)}[/]: {escape(message)}", highlight=False, soft_wrap=True
    )


def say(markup: str) -> None:
    """One line for people on stdout, never folded by rich (a terminal may still wrap it, and
    an id stays whole for copying) and without rich's guess-highlighting of numbers. Text the
    service sent must be `escape`d by the caller."""
    console.print(markup, highlight=False, soft_wrap=True)


def fail(type_: str, message: str, code: int = 1) -> NoReturn:
    """Print the error line and end the command with `code`."""
    print_error(type_, message)
    raise typer.Exit(code)


def emit(data: Any) -> None:
    """One JSON document on stdout, for `--json`."""
    print(json.dumps(data, indent=None))


def _client() -> VisgateClient:
    url = os.environ.get("VISGATE_URL", "http://127.0.0.1:8080")
    return VisgateClient(url, os.environ.get("VISGATE_API_KEY"))


@contextlib.contextmanager
def session() -> Iterator[VisgateClient]:
    """A client for one command. Everything that goes wrong inside, building the client
    included (no VISGATE_API_KEY), ends as one `Type: message` line and exit 1."""
    try:
        with _client() as client:
            yield client
    except CLI_EXITS:
        raise
    except ApiError as exc:
        fail(exc.type, exc.message)
    except Exception as exc:  # a last resort: a line, not a traceback
        fail(type(exc).__name__, str(exc) or repr(exc))
