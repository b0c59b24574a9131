"""`models migrate` on a genuine old-format version: a fastai export registered as `model.pkl`.

Flow tier: one small classifier is trained (with `package.fastai_export`), and its export bytes
become a legacy version whose holdout is real. Migrating needs the opt-in, verifies checksums,
proves the package on the holdout, adds it with the check in the version's ledger; afterwards the
version loads without the opt-in and predicts as the pickle did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.domain.catalogue import (
    HOLDOUT_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
)
from mlgov.packaging.errors import PickleRefusedError
from mlgov.packaging.package import PackagedModel
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.registry import ModelRegistry
from mlgov.training.config import PackageOptions, TrainingConfig
from mlgov.training.export import PACKAGE_TOLERANCE, relative_difference
from mlgov.training.inference import LearnerModel, predict
from mlgov.versions.loading import load_version_model
from mlgov.versions.migration import migrate_version, versions_to_migrate

pytestmark = pytest.mark.flow  # trains a fastai learner (seconds)
SPEC = demo_feature_spec()


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A version as mlgov wrote it before packages: a fastai export and its stored samples."""
    from mlgov.training.fit import train_tabular

    work = tmp_path_factory.mktemp("legacy")
    frame = prepare_frame(make_dataset(900, seed=3), SPEC)
    train, valid, holdout = frame.iloc[:600], frame.iloc[600:750], frame.iloc[750:]
    config = TrainingConfig(epochs=2, batch_size=128, device="cpu")
    result = train_tabular(
        train, valid, SPEC, config, work / "run", package=PackageOptions(fastai_export=True)
    )
    files = {LEGACY_MODEL_FILE: work / LEGACY_MODEL_FILE}
    files[LEGACY_MODEL_FILE].write_bytes(Path(str(result.fastai_export_path)).read_bytes())
    for name, rows in ((HOLDOUT_FILE, holdout), (REFERENCE_FILE, train)):
        rows.to_parquet(work / name, index=False)
        files[name] = work / name
    return files


@pytest.fixture
def registry(tmp_path: Path, legacy_files: dict[str, Path]) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        reg.register("churn", legacy_files, {"features": SPEC.model_dump(mode="json")})
        yield reg


def test_migrating_needs_the_opt_in_and_touches_nothing_without_it(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLGOV_ALLOW_PICKLE", raising=False)
    mv = registry.get("churn")

    record = migrate_version(registry, mv, actor="tests", run_id=None)

    assert record.outcome == "refused" and record.check is None
    (problem,) = record.problems
    assert problem.startswith("churn:1 stores its model only as a pickle (model.pkl)")
    assert "`mlgov models migrate churn:1 --allow-pickle`" in problem
    assert registry.get("churn") == mv and registry.decisions("churn") == []
    with pytest.raises(PickleRefusedError):
        load_version_model(registry, mv)


def test_a_migrated_version_loads_without_the_opt_in_and_predicts_as_the_pickle(
    registry: ModelRegistry, legacy_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    holdout = pd.read_parquet(legacy_files[HOLDOUT_FILE])
    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    pickled = load_version_model(registry, registry.get("churn"))
    assert isinstance(pickled, LearnerModel)
    expected = predict(pickled, holdout, SPEC)

    record = migrate_version(registry, registry.get("churn"), actor="tests", run_id="run-7")

    assert record.outcome == "migrated" and record.problems == ()
    assert f"on {len(holdout)} rows of {HOLDOUT_FILE}" in str(record.check)
    monkeypatch.delenv("MLGOV_ALLOW_PICKLE")
    migrated = registry.get("churn")
    assert [f.name for f in migrated.files][-2:] == [MANIFEST_FILE, WEIGHTS_FILE]
    assert registry.verify(migrated) == []
    package = load_version_model(registry, migrated)  # no opt-in: the package wins
    assert isinstance(package, PackagedModel)
    actual = predict(package, holdout, SPEC)
    assert relative_difference(expected, actual) <= PACKAGE_TOLERANCE
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))
    # The conversion and its check are in the version's ledger.
    (decision,) = registry.decisions("churn")
    assert (decision.version, decision.decision, decision.actor, decision.run_id) == (
        1,
        "migrated",
        "tests",
        "run-7",
    )
    assert decision.reason.startswith("model.pkl converted into model.json + model.safetensors;")
    assert str(record.check) in decision.reason
    # A second migration reports the package and changes nothing.
    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    again = migrate_version(registry, migrated, actor="tests", run_id=None)
    assert again.outcome == "already-packaged" and registry.get("churn") == migrated
    assert len(registry.decisions("churn")) == 1


def test_a_tampered_pickle_is_not_migrated(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    mv = registry.get("churn")
    stored = tmp_path / "store" / mv.location / LEGACY_MODEL_FILE
    stored.write_bytes(stored.read_bytes() + b"appended")

    record = migrate_version(registry, mv, actor="tests", run_id=None)

    assert record.outcome == "refused" and "'model.pkl' is corrupt" in record.problems[0]
    assert registry.get("churn") == mv and registry.decisions("churn") == []


def test_every_version_or_the_one_asked_for(registry: ModelRegistry) -> None:
    assert versions_to_migrate(registry, "churn", None) == [1]
    assert versions_to_migrate(registry, "churn", 1) == [1]
    with pytest.raises(ModelNotFoundError, match="model nobody is not registered"):
        versions_to_migrate(registry, "nobody", None)
