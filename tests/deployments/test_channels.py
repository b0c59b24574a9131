"""Alert channels: notification blocks keep their URL secret; bad names and URLs are refused."""

from __future__ import annotations

import io

import pytest

from cli.main import main
from deployments.channels import ChannelError, slack_block, webhook_block

SECRET_URL = "https://hooks.example.com/services/T000/B000/s3cr3t-token"


def test_a_webhook_channel_keeps_its_url_secret_and_sends_json() -> None:
    block = webhook_block("ml-alerts", SECRET_URL)

    assert SECRET_URL not in block.model_dump_json()
    assert SECRET_URL not in repr(block)
    request = block._build_request_args(body="b", subject="s")
    assert request["url"] == SECRET_URL
    assert request["json"] == {"subject": "s", "body": "b"}
    assert block.allow_private_urls is False


def test_a_slack_channel_keeps_its_url_secret() -> None:
    block = slack_block("ml-team", SECRET_URL)
    assert SECRET_URL not in block.model_dump_json()
    assert block.url.get_secret_value() == SECRET_URL


@pytest.mark.parametrize(
    ("name", "url"),
    [("ML_Alerts", SECRET_URL), ("ml-alerts", "ftp://example.com/x"), ("ml-alerts", "https://")],
)
def test_a_channel_with_a_bad_name_or_url_is_refused(name: str, url: str) -> None:
    with pytest.raises(ChannelError):
        webhook_block(name, url)


def test_the_cli_refuses_a_bad_channel_before_saving_anything(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{SECRET_URL}\n"))
    code = main(["alerts", "add-webhook", "Not_Valid", "-"])
    err = capsys.readouterr().err
    assert code == 2
    assert "lowercase letters, digits and dashes" in err and SECRET_URL not in err
