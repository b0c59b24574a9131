"""The package scores as fastai itself does: `get_preds` of the trained learner, row for row.

One tiny learner per task kind (binary, multi-class, regression, and a regression fitted on the
standardised log1p of a skewed positive target, whose package must give target units; a few
hundred rows, 3 epochs), trained once for the module. The rows scored hold what production sends: missing values in a
numeric column that had them in training (an indicator input) and in one that had none (fastai
refuses those: mlgov fills them with the training mean, so fastai scores the mean-filled rows),
unseen and missing categories, pandas `category` and `string` dtypes, columns in another order
and columns the model does not use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.packaging.package import PackagedModel, load_package_dir, package_learner
from mlgov.training.config import TrainingConfig

pytestmark = pytest.mark.flow  # trains fastai learners

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")
SPECS = {
    "binary": FeatureSpec(
        target="churned",
        task="classification",
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        classes=("no", "yes"),
    ),
    "multi-class": FeatureSpec(
        target="tier",
        task="classification",
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        classes=("high", "low", "mid"),
    ),
    "regression": FeatureSpec(
        target="value", task="regression", numeric=NUMERIC, categorical=CATEGORICAL
    ),
    "log-regression": FeatureSpec(
        target="spend", task="regression", numeric=NUMERIC, categorical=CATEGORICAL
    ),
}
CONFIG = TrainingConfig(epochs=3, batch_size=64, layers=(32, 16), lr_max=1e-2, device="cpu")
ATOL = 1e-5
# Regression targets are about 500: float32 holds about 7 significant digits, so the package and
# fastai agree to 1e-5 relative (a few 1e-4 absolute), not 1e-5 absolute.
RTOL_REGRESSION = 1e-5


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(-2, 2, n),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n),
            "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
        }
    )
    df.loc[rng.random(n) < 0.1, "income"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = np.nan
    latent = np.sin((df["age"] - 40) / 6) + df["score"] ** 2 - 1.3 + 0.8 * (df["plan"] == "pro")
    noise = rng.normal(0, 0.3, n)
    df["churned"] = np.where(latent + noise > 0, "yes", "no").astype(object)
    df["tier"] = pd.cut(latent + noise, [-np.inf, -0.7, 0.7, np.inf], labels=["low", "mid", "high"])
    df["tier"] = df["tier"].astype(object)
    df["value"] = 500 + 120 * latent + 20 * noise
    df["spend"] = np.exp(4 + latent + 0.5 * noise)  # positive, right-skewed
    return df


TRAIN, VALID = _frame(400, 1), _frame(100, 2)


def _scoring_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to score, and the same rows in the form fastai's preprocessing accepts."""
    rows = _frame(200, 3)
    rows.loc[0:9, "plan"] = "enterprise"  # unseen categories
    rows.loc[10:19, "region"] = "mars"
    rows.loc[20:29, "age"] = np.nan  # no missing ages in training: fastai would refuse these
    rows.loc[30:39, "plan"] = np.nan
    assert not TRAIN["age"].isna().any() and TRAIN["income"].isna().any()
    for_fastai = rows.assign(age=rows["age"].fillna(TRAIN["age"].mean()))
    return rows, for_fastai


@pytest.fixture(scope="module", params=list(SPECS))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(kind, learner, package) — the learner as training leaves it, its package loaded back."""
    from mlgov.training.fit import attach_target_inverse, build_learner, tabular_pandas
    from mlgov.training.quiet import quiet_fastai
    from mlgov.training.target import fit_target_transform

    kind = request.param
    spec = SPECS[kind]
    work = tmp_path_factory.mktemp(kind)
    classes = list(spec.classes) if spec.classes else None
    regression = spec.task == "regression"
    transform = fit_target_transform(TRAIN[spec.target]) if regression else None
    with quiet_fastai():
        to = tabular_pandas(TRAIN, VALID, spec, classes, transform)
        learn = build_learner(to, classes, CONFIG, work, transform)
        with learn.no_logging():
            learn.fit_one_cycle(CONFIG.epochs, lr_max=CONFIG.lr_max)
        attach_target_inverse(learn, transform)  # as training does: scores in target units
    package_learner(learn, spec, work / "package")
    return kind, learn, load_package_dir(work / "package")


def fastai_scores(learn: Any, rows: pd.DataFrame) -> np.ndarray:
    """What fastai predicts: its own test loader and `get_preds` (target units for regression)."""
    from mlgov.training.quiet import quiet_fastai

    with quiet_fastai(), learn.no_logging():
        preds, _ = learn.get_preds(dl=learn.dls.test_dl(rows))
    out = preds.numpy().astype(np.float64)
    return out if out.shape[1] > 1 else out.reshape(-1)


def assert_same_scores(kind: str, got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    if kind.endswith("regression"):
        np.testing.assert_allclose(got, expected, rtol=RTOL_REGRESSION, atol=0)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_the_package_records_what_training_fitted(trained: Any) -> None:
    kind, _, package = trained
    manifest = package.manifest
    assert manifest.classes == SPECS[kind].classes
    assert [m.name for m in manifest.preprocessing.missing] == ["income"]
    assert [c.name for c in manifest.preprocessing.categorical] == [*CATEGORICAL, "income_na"]
    assert [c.name for c in manifest.preprocessing.numeric] == list(NUMERIC)
    assert manifest.architecture.layers == CONFIG.layers
    assert manifest.architecture.y_range is None  # no sigmoid range: the target is standardised
    transform = manifest.architecture.target_transform
    assert (transform is not None) == (manifest.task == "regression")
    assert (transform is not None and transform.log1p) == (kind == "log-regression")
    assert manifest.libraries["fastai"] and manifest.libraries["torch"]


def test_package_scores_equal_fastai_get_preds(trained: Any) -> None:
    kind, learn, package = trained
    rows, for_fastai = _scoring_rows()
    expected = fastai_scores(learn, for_fastai)
    codes, _ = package.preprocessor.encode(rows)
    assert (codes[0:10, 0] == 0).all() and (codes[10:20, 1] == 0).all(), "unseen → #na#"
    assert (codes[:, 2] == 2).sum() == rows["income"].isna().sum() > 0, "income_na indicator"

    assert_same_scores(kind, package.scores(rows), expected)
    typed = rows.astype({"plan": "category", "region": "string"})
    assert_same_scores(kind, package.scores(typed), expected)
    shuffled = rows[list(rows.columns[::-1])].assign(unused=1.0)
    assert_same_scores(kind, package.scores(shuffled), expected)
    if kind == "log-regression":  # target units: positive, on the target's scale
        assert (expected > 0).all()
        assert 0.2 < np.median(expected) / TRAIN["spend"].median() < 5


def test_onnx_export_scores_as_fastai(trained: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX serving is the optional `onnx` extra")
    from mlgov.packaging.onnx_export import export_onnx
    from mlgov.packaging.onnx_model import load_onnx_dir

    kind, learn, package = trained
    assert isinstance(package, PackagedModel)
    export_onnx(package, tmp_path)
    rows, for_fastai = _scoring_rows()
    assert_same_scores(kind, load_onnx_dir(tmp_path).scores(rows), fastai_scores(learn, for_fastai))
