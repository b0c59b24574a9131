"""The `publish-evaluation-pictures` task: both PNGs read back through the Prefect API, byte for byte."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.evaluation.pictures import plot_confusion_matrix, plot_top_losses

pytestmark = pytest.mark.flow


def _pictures(folder: Path) -> tuple[Path, Path]:
    from PIL import Image

    paths = []
    for i, shade in enumerate((30, 120, 220)):
        path = folder / f"{i}.png"
        Image.new("RGB", (24, 24), (shade, shade, shade)).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({"image": paths, "label": ["dark", "light", "light"]})
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    classes = ("dark", "light")
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    confusion = plot_confusion_matrix(
        frame["label"].tolist(), predicted, classes, folder / "cm.png"
    )
    return confusion, plot_top_losses(frame, proba, classes, folder / "top.png", k=2)


def _published_png(key: str) -> bytes:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found and found[0].type == "image"
    return base64.b64decode(str(found[0].data).split("base64,", 1)[1])


def test_pictures_are_published_under_the_models_keys(
    prefect_harness: None, tmp_path: Path
) -> None:
    from prefect import flow

    from tasks.pictures import publish_evaluation_pictures

    confusion, top_losses = _pictures(tmp_path)

    @flow(name="pictures-task-check")
    def publish() -> dict[str, str]:
        return publish_evaluation_pictures("digits-pics", confusion, top_losses)

    keys = publish()
    assert keys == {
        "confusion-matrix": "digits-pics-confusion-matrix",
        "top-losses": "digits-pics-top-losses",
    }
    assert _published_png(keys["confusion-matrix"]) == confusion.read_bytes()
    assert _published_png(keys["top-losses"]) == top_losses.read_bytes()
