"""One webhook request: to the address that was checked, signed, time-boxed, not redirected."""

import asyncio
from dataclasses import dataclass
from ipaddress import IPv6Address

import httpx

from pastools_jobs.webhooks.addresses import SCHEMES, CheckedUrl
from pastools_jobs.webhooks.signing import signed_headers

USER_AGENT = "pastools-jobs-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """How one request went: `error` is None when the receiver took it (2xx)."""

    status_code: int | None
    error: str | None


async def send(
    target: CheckedUrl, secret: str, message_id: str, timestamp: int, body: bytes, timeout: float
) -> Answer:
    """POST `body` to the checked address with the URL's own Host (and, over https, its
    name for SNI and the certificate check). A 3xx is a failed attempt: following it would
    lead where no check was made. Proxies from the environment are not used, for the same
    reason. The receiver's body is never read."""
    headers = signed_headers(secret, message_id, timestamp, body)
    headers |= {"host": _host_header(target), "user-agent": USER_AGENT}
    extensions = {"sni_hostname": target.host} if target.parts.scheme == "https" else {}
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", _pinned_url(target), content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            code = response.status_code
    except (TimeoutError, httpx.TimeoutException):
        return Answer(None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as error:
        return Answer(None, f"request failed: {type(error).__name__}: {error}".rstrip(": "))
    if 200 <= code < 300:
        return Answer(code, None)
    if 300 <= code < 400:
        return Answer(code, f"answered {code}, a redirect: webhooks do not follow redirects")
    return Answer(code, f"answered {code}")


def _pinned_url(target: CheckedUrl) -> str:
    host = f"[{target.address}]" if isinstance(target.address, IPv6Address) else str(target.address)
    path = target.parts.path or "/"
    query = f"?{target.parts.query}" if target.parts.query else ""
    return f"{target.parts.scheme}://{host}:{target.port}{path}{query}"


def _host_header(target: CheckedUrl) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = SCHEMES[target.parts.scheme]
    return host if target.port == default else f"{host}:{target.port}"
