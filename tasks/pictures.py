"""Evaluation pictures as keyed Prefect artifacts: the confusion matrix and the top-losses grid.

The pictures are drawn by `mlgov.evaluation.pictures`; the keys come from
`mlgov.reporting.parts.artifact_key`, so the UI keeps each model's pictures under stable names.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mlgov.domain.catalogue import CONFUSION_FILE, PER_CLASS_FILE, TOP_LOSSES_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.metrics import encode_labels, error_rate, per_class_metrics
from mlgov.evaluation.pictures import plot_confusion_matrix, plot_top_losses
from mlgov.packaging.package import load_package_dir
from mlgov.reporting.parts import artifact_key
from mlgov.training.inference import predict

_PICTURES = (
    ("confusion-matrix", "actual vs predicted class on the holdout"),
    ("top-losses", "the holdout images the model got most wrong"),
)


@task(name="draw-evaluation-pictures", cache_policy=NO_CACHE)
def draw_evaluation_pictures(
    holdout: pd.DataFrame, spec: FeatureSpec, package_dir: Path, out_dir: Path
) -> dict[str, Path]:
    """An image model's confusion matrix and top-losses grid on its holdout, as version files."""
    classes = spec.classes or ()
    probabilities = predict(load_package_dir(package_dir), holdout, spec)
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    actual = [str(label) for label in holdout[spec.target]]
    out_dir.mkdir(parents=True, exist_ok=True)
    per_class = out_dir / PER_CLASS_FILE
    report = {
        "error_rate": _cell(error_rate(encode_labels(actual, classes), probabilities)),
        "classes": {
            name: {key: _cell(value) for key, value in figures.items()}
            for name, figures in per_class_metrics(actual, probabilities, classes).items()
        },
    }
    per_class.write_text(json.dumps(report, indent=2, allow_nan=False))
    return {
        PER_CLASS_FILE: per_class,
        CONFUSION_FILE: plot_confusion_matrix(actual, predicted, classes, out_dir / CONFUSION_FILE),
        TOP_LOSSES_FILE: plot_top_losses(
            holdout,
            probabilities,
            classes,
            out_dir / TOP_LOSSES_FILE,
            image_column=spec.image_column or "image",
            label_column=spec.target,
        ),
    }


@task(name="publish-evaluation-pictures", cache_policy=NO_CACHE)
def publish_evaluation_pictures(
    model: str, confusion_png: Path, top_losses_png: Path, per_class_json: Path | None = None
) -> dict[str, str]:
    """Both PNGs as image artifacts (data URLs: the UI shows them without a file server), and
    the per-class precision / recall as a table beside them."""
    keys: dict[str, str] = {}
    if per_class_json is not None:
        report = json.loads(Path(per_class_json).read_text())
        keys["per-class"] = artifact_key(model, "per-class")
        create_table_artifact(
            table=[
                {"class": name, **{k: _cell(v) for k, v in figures.items()}}
                for name, figures in report["classes"].items()
            ],
            key=keys["per-class"],
            description=f"{model}: precision, recall and F1 per class on the holdout "
            f"(error rate {_rate(report['error_rate'])})",
        )
    for (name, description), png in zip(_PICTURES, (confusion_png, top_losses_png), strict=True):
        encoded = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        key = artifact_key(model, name)
        create_image_artifact(
            image_url=f"data:image/png;base64,{encoded}",
            key=key,
            description=f"{model}: {description}",
        )
        keys[name] = key
    get_run_logger().info("Published %s", ", ".join(keys.values()))
    return keys


def _cell(value: float | None) -> float | None:
    """NaN (a class never predicted, or absent) as null / an empty cell: JSON has no NaN."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
