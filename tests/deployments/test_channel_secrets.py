"""Channel secrets: what is masked in a saved channel, and private addresses refused on save."""

from __future__ import annotations

import io
from uuid import uuid4

import pytest

from cli.main import main
from deployments.channels import ChannelError, slack_block, webhook_block
from mlgov.redaction import secret_values

SLACK = "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx"


def test_secret_values_of_both_channel_kinds() -> None:
    webhook = webhook_block(
        "ml-alerts", "https://hooks.example.com/hook/T0KEN123", allow_private=True
    )
    assert "https://hooks.example.com/hook/T0KEN123" in secret_values(webhook)
    slack = slack_block("ml-team", SLACK)
    assert SLACK in secret_values(slack)


# --- save-time refusal of private destinations -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook/T0KEN",
        "http://localhost/hook/T0KEN",
        "http://10.0.0.7/hook/T0KEN",
        "http://192.168.1.2/hook/T0KEN",
        "http://169.254.169.254/latest/meta-data/T0KEN",
        "http://[::1]:8080/hook/T0KEN",
        "http://0.0.0.0/hook/T0KEN",
        "http://240.0.0.1/hook/T0KEN",
    ],
)
def test_a_private_channel_is_refused_when_saved(url: str) -> None:
    with pytest.raises(ChannelError, match="private, loopback or reserved") as refused:
        webhook_block("ml-alerts", url)
    assert "T0KEN" not in str(refused.value)
    with pytest.raises(ChannelError):
        slack_block("ml-team", url)
    assert webhook_block("ml-alerts", url, allow_private=True).allow_private_urls is True


def test_a_public_or_unresolvable_host_is_accepted_when_saved() -> None:
    # No DNS here: a name that does not resolve now is judged again when the block sends.
    assert webhook_block("ml-alerts", "https://hooks.example.com/x").allow_private_urls is False
    assert webhook_block("ml-alerts", "https://93.184.215.14/x").allow_private_urls is False


@pytest.mark.unit  # the URL is refused before any Prefect server is needed
@pytest.mark.parametrize("command", ["add-webhook", "add-slack"])
def test_the_cli_refuses_a_localhost_channel_in_one_line(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"TOK{uuid4().hex}"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"http://localhost:9/services/{token}\n"))
    code = main(["alerts", command, "local-alerts", "-"])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2
    assert err.startswith("mlgov: ") and "\n" not in err and "localhost" in err
    assert token not in captured.err + captured.out
