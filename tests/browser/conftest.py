"""Browser fixtures: Debian's chromium driven by Playwright's sync API, one context per test,
console and page errors failing the test, and a folder for screenshots.

The browser is started once per package, not per session: between two sync calls Playwright
marks its own event loop as the thread's running loop, so while it lives every async test
(pytest-asyncio) and every `asyncio.run` in this process would refuse to start. Package scope
ends it before the next folder's tests. Tests in this folder are therefore plain sync tests,
and servers they need run in threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from tests.browser.support import REPO_ROOT, Site, SiteServer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # WebGL on the CPU (SwiftShader): chromium no longer falls back to it on its own.
    "--enable-unsafe-swiftshader",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000  # generous: a loaded 2-core CI machine renders WebGL on the CPU

expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_browser_errors(*fragments): console or page errors containing one of the "
        "fragments (any error, with none given) do not fail the test",
    )


def chromium_path() -> Path:
    return Path(os.environ.get("VISGATE_CHROMIUM") or "/usr/bin/chromium")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no chromium at {path}: `make browser` installs Debian's chromium package "
            "(or set VISGATE_CHROMIUM to another chromium binary)",
            pytrace=False,
        )
    launched = playwright.chromium.launch(
        executable_path=str(path), args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@pytest.fixture(scope="package")
def site_server() -> Iterator[Site]:
    with SiteServer() as site:
        yield site


@pytest.fixture
def site(site_server: Site) -> Site:
    """The loopback site, with no files or job answers left from an earlier test."""
    site_server.reset()
    return site_server


@pytest.fixture
def browser_errors(request: pytest.FixtureRequest) -> list[str]:
    """Console errors and uncaught page errors of this test's pages; any left after the test
    body fails it (clear the list, or mark the test `allow_browser_errors`)."""
    errors: list[str] = []
    request.node.stash[_ERRORS] = errors
    return errors


def open_page(browser: Browser, errors: list[str], **context_options: Any) -> Page:
    """A page in a fresh context whose console and page errors go to `errors`."""
    options = {"viewport": VIEWPORT, "locale": "en-US", **context_options}
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return page


@pytest.fixture
def page(
    browser: Browser, browser_errors: list[str], request: pytest.FixtureRequest
) -> Iterator[Page]:
    opened = open_page(browser, browser_errors)
    request.node.stash[_PAGES] = [opened]
    yield opened
    opened.context.close()


@pytest.fixture
def artefacts() -> Path:
    """Where screenshots go: test-artefacts/browser/ (VISGATE_TEST_ARTEFACTS moves the root)."""
    root = Path(os.environ.get("VISGATE_TEST_ARTEFACTS") or REPO_ROOT / "test-artefacts")
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_ERRORS = pytest.StashKey[list[str]]()
_PAGES = pytest.StashKey[list[Page]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fails a test whose pages logged errors, once its body passed."""
    result = yield
    errors = item.stash.get(_ERRORS, None)
    if errors is None:
        return result
    for opened in item.stash.get(_PAGES, []):
        if not opened.is_closed():
            opened.evaluate("0")  # a round trip: events the page sent before it are delivered
    marker = item.get_closest_marker("allow_browser_errors")
    if marker is not None:
        fragments = marker.args
        errors[:] = [e for e in errors if fragments and not any(f in e for f in fragments)]
    if errors:
        raise AssertionError("the page logged errors:\n" + "\n".join(errors))
    return result
