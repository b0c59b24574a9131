"""`mlgov train` hands its options to the flow's parameter model, which refuses bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgov.data.demo import make_dataset


@pytest.mark.flow  # the first call imports the training flow and its libraries: seconds
@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_cli_passes_zero_epochs_through_to_be_refused(
    epochs: str, tmp_path: Path, mlgov_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--epochs 0` used to be dropped (falsy) and 20 epochs trained; now the config refuses it."""
    from cli.main import main

    data = tmp_path / "d.csv"
    make_dataset(50, 1).to_csv(data, index=False)
    code = main(["train", "--data", str(data), "--target", "churned", "--epochs", epochs])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("mlgov: ") and "training.epochs" in err and len(err.splitlines()) == 1
    assert not mlgov_home.exists() or not any(mlgov_home.rglob("*.pkl"))
