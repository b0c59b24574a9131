"""Settings come from `MLGOV_*` variables, checked when read: a bad value is refused, not used."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgov.settings import MLGovSettings


def test_defaults_put_everything_under_the_home(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MLGOV_HOME",
        "MLGOV_REGISTRY_URL",
        "MLGOV_STORE_URL",
        "MLGOV_NOTIFICATION_BACKOFF_S",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = MLGovSettings()
    assert settings.home == Path(".mlgov")
    assert settings.resolved_registry_url.startswith("sqlite:///")
    assert settings.notification_backoff_s == 1.0


def test_notification_backoff_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGOV_NOTIFICATION_BACKOFF_S", "0.25")
    assert MLGovSettings().notification_backoff_s == 0.25
    monkeypatch.setenv("MLGOV_NOTIFICATION_BACKOFF_S", "-1")
    with pytest.raises(ValidationError, match="notification_backoff_s"):
        MLGovSettings()
