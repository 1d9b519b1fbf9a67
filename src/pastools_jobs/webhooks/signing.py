"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what a receiver checks.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the key the bytes of
the secret after its `whsec_` prefix (base64), the signature HMAC-SHA256 in base64,
sent as `webhook-signature: v1,<signature>`. The id is the delivery's, the same on every
attempt, so a receiver de-duplicates by it; the timestamp is the attempt's, so it can
refuse old replays.
"""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one request."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
