"""The registry tasks under Prefect: names, logging, and what they hand on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from prefect import flow

from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT, PROMOTED_EVENT, REFERENCE_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.storage.version_metadata import VersionMetadata
from mlgov.versions.registration import ChampionArtifacts, Registration
from tasks.registration import (
    find_champion,
    load_model_version,
    mark_published,
    open_registry,
    read_reference_sample,
    register_challenger,
)

FEATURES = {"target": "y", "task": "regression", "numeric": ["x"]}


@pytest.mark.usefixtures("prefect_harness")
def test_register_find_load_and_clear_what_was_published(mlgov_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "files"
    source.mkdir()
    (source / "model.pkl").write_bytes(b"model")
    pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]}).to_parquet(source / REFERENCE_FILE)
    files = {"model.pkl": source / "model.pkl", REFERENCE_FILE: source / REFERENCE_FILE}
    meta = VersionMetadata(
        verdict=Verdict.FIRST_CHAMPION,
        reasons=("first",),
        features=FeatureSpec.model_validate(FEATURES),
    )

    @flow
    def register_then_read() -> None:  # the tasks log to their flow run, as in the pipeline
        assert find_champion("tm", tmp_path / "work") is None
        registered = register_challenger(
            Registration(
                "tm", files, meta, promote=True, expected_champion=None, reason="first", run_id=None
            )
        )
        assert (registered.version, registered.alias_moved) == (1, True)
        assert {str(item) for item in registered.pending} == {PROMOTED_EVENT, MODEL_CARD_ARTIFACT}

        champion = find_champion("tm", tmp_path / "work")
        assert champion is not None and champion.version == 1 and REFERENCE_FILE in champion.files
        assert load_model_version("tm:1", tmp_path / "work").model_sha256 == champion.model_sha256
        assert list(read_reference_sample(champion)["x"]) == [1.0, 2.0]

        assert mark_published("tm", 1, registered.pending) == 2
        with open_registry() as registry:
            assert registry.pending_publications("tm", 1) == []

    register_then_read()


@pytest.mark.unit
def test_a_version_without_a_reference_sample_says_so() -> None:
    artifacts = ChampionArtifacts(
        name="tm",
        version=2,
        spec=FEATURES,  # type: ignore[arg-type]
        files={},
        metrics={},
        model_sha256="0" * 64,
    )
    with pytest.raises(FileNotFoundError, match=r"tm v2 has no reference\.parquet"):
        read_reference_sample.fn(artifacts)
