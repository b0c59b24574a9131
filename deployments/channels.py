"""Alert channels: Prefect notification blocks that flows and automations send through.

A webhook URL usually carries its credential (Slack's does), so it is kept in a secret field of
the block: the server stores it encrypted, the UI and API show it masked, and nothing here prints
or logs it. Flows name a channel by `block-type-slug/name` (`MLGOV_NOTIFICATION_BLOCK`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import warnings
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# The webhook block substitutes `{{key}}` from its secrets: the URL itself is one of them.
_URL_SECRET = "webhook_url"


class ChannelError(ValueError):
    """A channel that cannot be saved as given; the message says what to change."""


class SavedChannel(BaseModel):
    """A saved notification block, named the way `MLGOV_NOTIFICATION_BLOCK` expects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    block: str
    kind: Literal["custom-webhook", "slack-webhook"]
    allow_private: bool


def check_channel(name: str, url: str, *, allow_private: bool) -> None:
    """Refuse a bad name or URL before anything is saved (or a server is started to save it)."""
    if not _BLOCK_NAME.match(name):
        raise ChannelError(
            f"channel name {name!r}: use lowercase letters, digits and dashes (e.g. ml-alerts)"
        )
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unbalanced `[` in the host
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise ChannelError("the channel URL must be an http:// or https:// URL with a host")
    if not allow_private:
        _check_public(url, host)


def _check_public(url: str, host: str) -> None:
    """Refuse, when the channel is saved, a host that is or resolves to a private, loopback,
    link-local or reserved address: otherwise the mistake surfaces only when an alert fails.

    Prefect's own check (the one the block applies again when it sends) decides first. A name
    that does not resolve from here cannot be judged now: it is accepted, and the send-time
    check refuses it if it later resolves to a private address. Messages name the host only:
    the rest of the URL is the credential.
    """
    from prefect.utilities.urls import validate_restricted_url

    addresses = _resolve(host)
    try:
        validate_restricted_url(url)
    except ValueError:
        if addresses:
            raise ChannelError(_private_message(host, addresses[0])) from None
    for address in addresses:
        if (
            address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise ChannelError(_private_message(host, address))


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses `host` is or resolves to; empty when it does not resolve from here."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            continue
    return found


def _private_message(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return (
        f"the channel host {host} is a private, loopback or reserved address ({address}); "
        "use a public URL, or --allow-private (add-webhook) if the receiver is on your network"
    )


def webhook_block(
    name: str, url: str, *, allow_private: bool = False
) -> CustomWebhookNotificationBlock:
    """A JSON webhook (`{"subject": ..., "body": ...}`) whose URL lives in the block's secrets.

    Private, loopback, link-local and reserved addresses (also names resolving to them, such as
    `localhost`) are refused now unless `allow_private`: a URL typed by a user must not make the
    server call into its own network by accident, and a mistake should fail at save time.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    check_channel(name, url, allow_private=allow_private)
    return CustomWebhookNotificationBlock(
        name=name,
        url="{{" + _URL_SECRET + "}}",
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        headers=None,
        cookies=None,
        secrets=SecretDict({_URL_SECRET: url}),
        allow_private_urls=allow_private,
    )


def slack_block(name: str, url: str) -> SlackWebhook:
    """A Slack incoming webhook; its URL is a `SecretStr` field of Prefect's block.

    The block refuses private addresses when it sends, so they are refused here as well.
    """
    from prefect.blocks.notifications import SlackWebhook

    check_channel(name, url, allow_private=False)
    with warnings.catch_warnings():  # apprise, loaded by the block, imports deprecated `imghdr`
        warnings.simplefilter("ignore", DeprecationWarning)
        return SlackWebhook(url=SecretStr(url), allow_private_urls=False)


def save_webhook_channel(name: str, url: str, *, allow_private: bool = False) -> SavedChannel:
    """Create or replace the webhook channel `custom-webhook/<name>`."""
    block = webhook_block(name, url, allow_private=allow_private)
    block.save(name, overwrite=True)
    return SavedChannel(
        block=f"{block.get_block_type_slug()}/{name}",
        kind="custom-webhook",
        allow_private=allow_private,
    )


def save_slack_channel(name: str, url: str) -> SavedChannel:
    """Create or replace the Slack channel `slack-webhook/<name>`."""
    block = slack_block(name, url)
    block.save(name, overwrite=True)
    return SavedChannel(
        block=f"{block.get_block_type_slug()}/{name}", kind="slack-webhook", allow_private=False
    )
