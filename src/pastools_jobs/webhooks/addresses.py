"""Which URLs a webhook may call (SECURITY.md, item 11): no request of the platform's may
be aimed by a user at the platform's own network (SSRF).

A URL is checked when a webhook is created or changed, and again before every request,
after DNS resolution: every address the name resolves to must be public, unless it lies
in a network the operator allowed (`PASTOOLS_WEBHOOK_ALLOWED_NETWORKS`). The request is
then sent to the very address that was checked, so a name that resolves otherwise a
moment later (DNS rebinding) cannot redirect it; redirects are never followed.
"""

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import SplitResult, urlsplit

from pastools_jobs.domain import UnresolvableWebhookHost, UnsafeWebhookUrl

MAX_URL_LENGTH = 2000
SCHEMES = {"http": 80, "https": 443}
RESOLVE_TIMEOUT_SECONDS = 5.0
"""A resolver that does not answer must not hold a request (or an attempt) for long."""

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that may be called, and the address it resolved to, which the request uses."""

    url: str
    parts: SplitResult
    host: str
    port: int
    address: Address


def parse_url(url: str) -> tuple[SplitResult, str, int]:
    """The URL's shape alone (no DNS): http or https, a host, no credentials, bounded."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeWebhookUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeWebhookUrl(f"The URL cannot be parsed: {error}.") from None
    if parts.scheme not in SCHEMES:
        raise UnsafeWebhookUrl("A webhook URL must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookUrl("A webhook URL may not carry a user name or password.")
    if not parts.hostname:
        raise UnsafeWebhookUrl("The URL names no host.")
    return parts, parts.hostname, port or SCHEMES[parts.scheme]


def redacted(url: str) -> str:
    """The URL without its path and query, for those who may not hold it whole: a Slack or
    chat webhook's URL is its own credential (`hooks.slack.com/services/T…/B…/<key>`)."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{hidden}"


def refusal(address: Address, allowed: Sequence[Network]) -> str | None:
    """Why the platform will not call `address`, or None if it may."""
    candidates: list[Address] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(candidate in network for candidate in candidates for network in allowed):
        return None
    plain = candidates[-1]
    if plain.is_unspecified:
        return "an unspecified address"
    if plain.is_loopback:
        return "a loopback address"
    if plain.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if plain.is_multicast:
        return "a multicast address"
    if plain.is_reserved:
        return "a reserved address"
    if plain.is_private:
        return "a private address"
    if not plain.is_global:
        return "not a public address"
    return None


def check_addresses(host: str, addresses: Sequence[Address], allowed: Sequence[Network]) -> None:
    """Every address must pass: a name that resolves to a public and a private address
    could be answered with either."""
    if not addresses:
        raise UnresolvableWebhookHost(f"The host '{host}' resolves to no address.")
    for address in addresses:
        if (why := refusal(address, allowed)) is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise UnsafeWebhookUrl(
                f"The URL's host {shown} is {why}; webhooks may call public addresses only "
                "(an operator can allow networks with PASTOOLS_WEBHOOK_ALLOWED_NETWORKS)."
            )


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to; an IP literal is itself."""
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvableWebhookHost(f"The host '{host}' cannot be resolved: {error}.") from None
    except TimeoutError:
        raise UnresolvableWebhookHost(
            f"The host '{host}' did not resolve within {RESOLVE_TIMEOUT_SECONDS:g} s."
        ) from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_url(url: str, allowed: Sequence[Network]) -> CheckedUrl:
    """The URL parsed, resolved and checked; raises UnsafeWebhookUrl saying why not."""
    parts, host, port = parse_url(url)
    addresses = await resolve(host, port)
    check_addresses(host, addresses, allowed)
    return CheckedUrl(url, parts, host, port, addresses[0])
