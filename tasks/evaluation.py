"""The `evaluate-models` task: loads both models once, then hands their predict functions to the core.

The champion is loaded from the registry's bytes as they are verified (a pickle-only champion
only with the opt-in); the challenger is this run's own freshly trained package. Scoring and
comparing live in `mlgov.evaluation`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.catalogue import HOLDOUT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.evaluate import (
    ChampionModel,
    EvaluationSettings,
    ModelEvaluation,
    Predictor,
    evaluate_challenger_and_champion,
)
from mlgov.packaging.package import load_package_dir
from mlgov.training.inference import ScoringModel, predict
from mlgov.versions.registration import ChampionArtifacts, read_verified_model
from tasks.registration import open_registry


def _predictor(model: ScoringModel, spec: FeatureSpec) -> Predictor:
    """A loaded model as a predict function: load once, score as many frames as needed."""
    return lambda frame: predict(model, frame, spec)


def _champion_model(champion: ChampionArtifacts) -> ChampionModel:
    """The champion's model from the store's verified bytes, with its spec and stored holdout."""
    with open_registry() as registry:
        model = read_verified_model(registry, champion)
    holdout_path = champion.path(HOLDOUT_FILE)
    return ChampionModel(
        predict=_predictor(model, champion.spec),
        spec=champion.spec,
        holdout=None if holdout_path is None else pd.read_parquet(holdout_path),
    )


@task(name="evaluate-models", cache_policy=NO_CACHE)
def evaluate_models(
    holdout: pd.DataFrame,
    spec: FeatureSpec,
    challenger_dir: Path,
    champion: ChampionArtifacts | None,
    settings: EvaluationSettings,
) -> ModelEvaluation:
    """Challenger and champion (if any) on the new holdout and on the champion's own holdout."""
    challenger = _predictor(load_package_dir(challenger_dir), spec)
    result = evaluate_challenger_and_champion(
        holdout,
        spec,
        challenger,
        None if champion is None else _champion_model(champion),
        settings,
    )
    log = get_run_logger()
    for c in result.new_holdout:
        log.info(
            "%s: challenger %.4f, champion %s",
            c.metric,
            c.challenger,
            "–" if c.champion is None else f"{c.champion:.4f}",
        )
    for note in result.notes:
        log.warning(note)
    return result
