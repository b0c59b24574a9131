"""Alert channels: Prefect notification blocks that flows and automations send through.

A webhook URL usually carries its credential (Slack's does), so it is kept in a secret field of
the block: the server stores it encrypted, the UI and API show it masked, and nothing here prints
or logs it. Flows name a channel by `block-type-slug/name` (`MLGOV_NOTIFICATION_BLOCK`).
"""

from __future__ import annotations

import re
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


def _check(name: str, url: str) -> None:
    if not _BLOCK_NAME.match(name):
        raise ChannelError(
            f"channel name {name!r}: use lowercase letters, digits and dashes (e.g. ml-alerts)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError("the channel URL must be an http:// or https:// URL with a host")


def webhook_block(
    name: str, url: str, *, allow_private: bool = False
) -> CustomWebhookNotificationBlock:
    """A JSON webhook (`{"subject": ..., "body": ...}`) whose URL lives in the block's secrets.

    Private and loopback addresses are refused unless `allow_private`: a URL typed by a user
    must not make the server call into its own network by accident.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    _check(name, url)
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
    """A Slack incoming webhook; its URL is a `SecretStr` field of Prefect's block."""
    from prefect.blocks.notifications import SlackWebhook

    _check(name, url)
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
