"""How a delivery is signed, and how a receiver checks it.

The signature is HMAC-SHA256, keyed with the webhook's secret, of the bytes
`<timestamp>.<body>`: the X-Fast-Agent-Timestamp header's value (Unix seconds, ASCII), a
dot, and the request body exactly as sent. It is sent as `X-Fast-Agent-Signature:
sha256=<lowercase hex>`. Signing the timestamp lets a receiver refuse a replayed request
(`verify` allows 5 minutes either way); the delivery id lets it drop a repeat of one it took.
"""

from __future__ import annotations

import hashlib
import hmac
import time

CONTENT_TYPE = "application/json"
DELIVERY_HEADER = "X-Fast-Agent-Delivery"
EVENT_HEADER = "X-Fast-Agent-Event"
TIMESTAMP_HEADER = "X-Fast-Agent-Timestamp"
SIGNATURE_HEADER = "X-Fast-Agent-Signature"
SIGNATURE_PREFIX = "sha256="
#: How far a signed timestamp may be from the receiver's clock for `verify`.
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of `<timestamp>.<body>` keyed with `secret`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signed_headers(
    *, secret: str, body: bytes, delivery_id: str, event: str, timestamp: int
) -> dict[str, str]:
    """Every header a delivery is POSTed with."""
    stamp = str(timestamp)
    return {
        "Content-Type": CONTENT_TYPE,
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, stamp, body),
    }


def verify(
    secret: str,
    *,
    body: bytes,
    timestamp: str,
    signature_header: str,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether a request is a delivery signed with `secret`, timestamped within tolerance.

    Compares in constant time. For receivers written in Python (docs/durable-runs.md shows the
    same check in a few lines of the standard library).
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header.strip())
