"""One delivery attempt against a real HTTP receiver on 127.0.0.1 (hence allow_private=True):
what each kind of answer, or no answer, turns into."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from tests.integration.webhooks.conftest import Receiver
from tests.support.webhooks import EVENT_TIME, ready_event, send_ready
from visgate.kit import parse_retry_after
from visgate.webhooks import WebhookVerificationError, verify_webhook
from visgate.webhooks.sender import deliver_once


async def test_2xx_is_delivered_and_the_receiver_can_verify_it(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=receiver.url("/ok"),
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=True,
    )
    assert attempt.ok and attempt.status_code == 200 and attempt.error is None
    assert attempt.response_excerpt == "thanks"
    assert attempt.duration_ms > 0 and not attempt.disable
    (got,) = receiver.requests
    assert got.body == body
    assert got.headers["webhook-id"] == msg_id
    assert got.headers["content-type"] == "application/json"
    assert verify_webhook(secret, got.headers, got.body)["data"]["deployment_id"] == "dep_1"


async def test_204_counts_as_delivered(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/accepted"), secret)
    assert attempt.ok and attempt.status_code == 204 and attempt.response_excerpt == ""


async def test_500_is_a_failed_attempt_with_the_answer_kept(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/fail"), secret)
    assert not attempt.ok and attempt.status_code == 500
    assert attempt.error == "HTTP 500"
    assert attempt.response_excerpt == "database is down"
    assert attempt.retry_after_s is None and not attempt.disable


async def test_retries_keep_the_id_and_sign_with_a_fresh_timestamp(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    """The receiver answers 500 then 200; both tries carry one webhook-id and the same body."""
    receiver.flaky_failures_left = 1
    msg_id, body = ready_event()
    first = await deliver_once(
        client,
        url=receiver.url("/flaky"),
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=True,
        now=EVENT_TIME + 1,
    )
    second = await deliver_once(
        client,
        url=receiver.url("/flaky"),
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=True,
        now=EVENT_TIME + 306,
    )
    assert (first.ok, second.ok) == (False, True)
    assert (first.attempted_at, second.attempted_at) == (EVENT_TIME + 1, EVENT_TIME + 306)
    one, two = receiver.requests
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == msg_id
    assert one.body == two.body == body
    assert (one.headers["webhook-timestamp"], two.headers["webhook-timestamp"]) == (
        str(int(EVENT_TIME + 1)),
        str(int(EVENT_TIME + 306)),
    )
    assert one.headers["webhook-signature"] != two.headers["webhook-signature"]
    # The first try's signature is stale by the time of the second: no replaying it.
    verify_webhook(secret, two.headers, two.body, now=EVENT_TIME + 306)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(secret, one.headers, one.body, now=EVENT_TIME + 306)


async def test_the_clock_signs_each_attempt_by_default(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    # The event happened at EVENT_TIME, long ago.
    attempt = await send_ready(client, receiver.url("/ok"), secret)
    (got,) = receiver.requests
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) <= 2
    assert abs(attempt.attempted_at - time.time()) <= 2
    verify_webhook(secret, got.headers, got.body)


async def test_429_reports_retry_after_seconds(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/throttled"), secret)
    assert not attempt.ok and attempt.status_code == 429
    assert attempt.retry_after_s == 120.0 and not attempt.disable


async def test_503_reports_retry_after_given_as_an_http_date(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/unavailable"), secret)
    assert attempt.status_code == 503
    assert attempt.retry_after_s is not None and attempt.retry_after_s > 365 * 86400


async def test_410_gone_disables_the_delivery(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/gone"), secret)
    assert not attempt.ok and attempt.status_code == 410 and attempt.disable
    assert "Gone" in (attempt.error or "")


@pytest.mark.parametrize("follow_redirects", [False, True])
async def test_redirects_are_never_followed(
    receiver: Receiver, secret: str, follow_redirects: bool
) -> None:
    """Even a client configured to follow redirects does not follow ours."""
    async with httpx.AsyncClient(follow_redirects=follow_redirects, trust_env=False) as client:
        attempt = await send_ready(client, receiver.url("/redirect"), secret)
    assert not attempt.ok and attempt.status_code == 307
    assert "not followed" in (attempt.error or "") and "/redirect-target" in (attempt.error or "")
    assert receiver.paths() == ["/redirect"]


async def test_a_redirect_to_the_metadata_server_is_a_failed_attempt(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/to-metadata"), secret)
    assert attempt.status_code == 302 and not attempt.ok
    assert "not followed" in (attempt.error or "")


async def test_timeout_is_a_failed_attempt_not_an_exception(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    started = time.perf_counter()
    attempt = await send_ready(client, receiver.url("/slow"), secret, timeout=0.3)
    assert time.perf_counter() - started < 2
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error == "timed out after 0.3 s"


async def test_an_endless_answer_is_cut_at_2_kb(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/endless"), secret, timeout=5)
    assert attempt.status_code == 500 and not attempt.ok
    assert attempt.response_excerpt == "x" * 2048


async def test_the_answer_excerpt_is_decoded_with_its_charset(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    attempt = await send_ready(client, receiver.url("/latin1"), secret)
    assert attempt.status_code == 400 and attempt.response_excerpt == "café fermé"


async def test_connection_refused_is_a_failed_attempt(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempt = await send_ready(client, f"http://127.0.0.1:{port}/hook", secret)
    assert not attempt.ok and attempt.status_code is None
    assert (attempt.error or "").startswith("connection failed")
    assert not attempt.disable


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now) == 90.0
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None
