"""Standard Webhooks signatures: what our receivers' `verify_webhook` accepts and refuses."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest

from visgate.webhooks import WebhookVerificationError, generate_secret, verify_webhook
from visgate.webhooks.signing import build_headers, sign

# Published test vector of the Standard Webhooks reference libraries
# (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = b'{"type":"deployment.ready","timestamp":"2025-01-01T00:00:00Z","data":{"deployment_id":"dep_1"}}'


def _vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    headers.update(overrides)
    return headers


def test_sign_matches_the_published_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    # The secret may be given without its prefix, as the reference library allows.
    assert (
        sign(VECTOR_SECRET.removeprefix("whsec_"), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
        == VECTOR_SIGNATURE
    )


def test_verify_accepts_the_published_vector() -> None:
    payload = verify_webhook(
        VECTOR_SECRET, _vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP + 10
    )
    assert payload == {"test": 2432232314}


def test_verify_refuses_the_reference_libraries_near_miss_signature() -> None:
    # One character off the vector (their "invalid signature" case).
    near_miss = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    with pytest.raises(WebhookVerificationError, match="no valid v1 signature"):
        verify_webhook(
            VECTOR_SECRET,
            _vector_headers(**{"webhook-signature": near_miss}),
            VECTOR_BODY,
            now=VECTOR_TIMESTAMP,
        )


def test_generated_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_round_trip_with_headers_as_sent(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "msg_abc"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) <= 2
    assert verify_webhook(secret, headers, BODY)["data"] == {"deployment_id": "dep_1"}


def test_header_names_are_case_insensitive(secret: str) -> None:
    headers = {k.title(): v for k, v in build_headers(secret, "msg_abc", BODY).items()}
    assert "Webhook-Signature" in headers
    assert verify_webhook(secret, headers, BODY)["type"] == "deployment.ready"


def test_a_str_body_is_read_as_utf8(secret: str) -> None:
    body = '{"name":"caf\u00e9"}'
    headers = build_headers(secret, "msg_abc", body.encode())
    assert verify_webhook(secret, headers, body) == {"name": "caf\u00e9"}


def test_tampered_body_is_refused(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, BODY.replace(b"dep_1", b"dep_2"))


def test_reserialized_json_is_refused(secret: str) -> None:
    """The classic receiver mistake: verifying json.dumps(json.loads(body))."""
    headers = build_headers(secret, "msg_abc", BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, BODY.replace(b'","', b'", "'))


def test_wrong_secret_is_refused(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(generate_secret(), headers, BODY)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_changed_id_or_timestamp_is_refused(secret: str, header: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    headers[header] = "msg_other" if header == "webhook-id" else str(int(headers[header]) - 1)
    with pytest.raises(WebhookVerificationError, match="no valid v1 signature"):
        verify_webhook(secret, headers, BODY)


@pytest.mark.parametrize(
    ("age_s", "accepted"),
    [(-301, False), (-299, True), (0, True), (299, True), (301, False)],
)
def test_timestamp_must_be_within_five_minutes(secret: str, age_s: int, accepted: bool) -> None:
    now = 1_700_000_000
    headers = build_headers(secret, "msg_abc", BODY, now=now + age_s)
    if accepted:
        assert verify_webhook(secret, headers, BODY, now=now)
    else:
        with pytest.raises(WebhookVerificationError, match=r"too old|future"):
            verify_webhook(secret, headers, BODY, now=now)


def test_stale_message_with_the_real_clock_is_refused(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY, now=time.time() - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(secret, headers, BODY)


def test_tolerance_accepts_a_timedelta_or_seconds(secret: str) -> None:
    now = 1_700_000_000
    headers = build_headers(secret, "msg_abc", BODY, now=now - 60)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, BODY, timedelta(seconds=30), now=now)
    assert verify_webhook(secret, headers, BODY, timedelta(minutes=2), now=now)
    assert verify_webhook(secret, headers, BODY, 61.0, now=now)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(secret: str, missing: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=missing):
        verify_webhook(secret, headers, BODY)


@pytest.mark.parametrize("timestamp", ["hello", "1.7e9", "-5", " ", "\uff11\uff17\uff10\uff10"])
def test_non_integer_timestamp_is_refused(secret: str, timestamp: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    headers["webhook-timestamp"] = timestamp
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, BODY)


def test_any_matching_v1_signature_among_several_passes(secret: str) -> None:
    """Secret rotation: the header carries signatures under the old and the new secret."""
    old_secret = generate_secret()
    headers = build_headers(secret, "msg_abc", BODY)
    ts = int(headers["webhook-timestamp"])
    good = headers["webhook-signature"]
    headers["webhook-signature"] = " ".join(
        [
            sign(old_secret, "msg_abc", ts, BODY),
            "v2," + good.removeprefix("v1,"),
            "garbage",
            "v1,not-base64!!",
            good,
        ]
    )
    assert verify_webhook(secret, headers, BODY)["type"] == "deployment.ready"
    assert verify_webhook(old_secret, headers, BODY)["type"] == "deployment.ready"


def test_only_v1_signatures_count(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", BODY)
    headers["webhook-signature"] = "v1a," + headers["webhook-signature"].removeprefix("v1,")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, BODY)


def test_errors_never_reveal_the_expected_signature(secret: str) -> None:
    """A refusal that showed the right signature would make the receiver a signing oracle."""
    headers = build_headers(secret, "msg_abc", BODY)
    expected = headers["webhook-signature"].removeprefix("v1,")
    headers["webhook-signature"] = "v1,AAAA"
    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook(secret, headers, BODY)
    assert expected not in str(caught.value)
    assert secret.removeprefix("whsec_") not in str(caught.value)


def test_authentic_non_json_body_is_refused(secret: str) -> None:
    headers = build_headers(secret, "msg_abc", b"not json")
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(secret, headers, b"not json")


@pytest.mark.parametrize("bad_secret", ["", "whsec_", "whsec_!!!!"])
def test_malformed_secret_is_a_configuration_error_not_a_forgery(bad_secret: str) -> None:
    headers = build_headers(generate_secret(), "msg_abc", BODY)
    with pytest.raises(ValueError, match="secret"):
        verify_webhook(bad_secret, headers, BODY)


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1"])
def test_sign_refuses_ids_that_would_make_the_signed_string_ambiguous(
    secret: str, msg_id: str
) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        sign(secret, msg_id, 1_700_000_000, BODY)
