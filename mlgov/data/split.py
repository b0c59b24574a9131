"""Cutting a prepared table into train, early-stopping and holdout rows.

The holdout is never seen in training; with a time column it is the newest rows. Splits are row
positions (`DataSplits`), so they are small to log and record; `PreparedData` holds the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.data.errors import DataError
from mlgov.data.features import prepare_frame
from mlgov.domain.features import FeatureSpec


class SplitConfig(BaseModel):
    """How the held-out set is cut; a time column makes it the most recent rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    valid_fraction: float = Field(
        default=0.15,
        gt=0.0,
        lt=0.9,
        description="Share of the training part used for early stopping.",
    )
    strategy: Literal["random", "time"] = Field(
        default="random",
        description="`time` needs `time_column`: the newest rows become the holdout.",
    )
    seed: int = 0


class DataSplits(BaseModel):
    """Row positions of each split, so stages exchange small records rather than frames."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: tuple[int, ...]
    valid: tuple[int, ...]
    holdout: tuple[int, ...]
    strategy: str


class PreparedData(BaseModel):
    """The three splits as frames (kept in-process: tasks use NO_CACHE, nothing is hashed).

    `train`, `valid` and `holdout` are in training's encoding (`prepare_frame`); `raw_train` holds
    the same training rows as they arrived, which is what the saved input contract must describe:
    the next run validates raw data against it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    raw_train: pd.DataFrame
    strategy: str
    leaked: tuple[str, ...] = ()
    """Holdout images left out because their bytes are also in training (image models)."""


def split_frame(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> DataSplits:
    """Train / early-stopping / holdout positions; the holdout is never seen in training."""
    n = len(frame)
    if n < 20:
        raise DataError(f"only {n} usable rows: at least 20 are needed to train and hold out")
    if config.strategy == "time":
        if not spec.time_column:
            raise DataError("split strategy `time` needs a time column (`time_column`)")
        order = np.argsort(pd.to_datetime(frame[spec.time_column]).to_numpy(), kind="stable")
    else:
        order = np.random.default_rng(config.seed).permutation(n)
    n_holdout = max(round(n * config.holdout_fraction), 5)
    if config.strategy == "time":
        rest, holdout = order[: n - n_holdout], order[n - n_holdout :]
        rest = np.random.default_rng(config.seed).permutation(rest)
    else:
        holdout, rest = order[:n_holdout], order[n_holdout:]
    n_valid = max(round(len(rest) * config.valid_fraction), 5)
    valid, train = rest[:n_valid], rest[n_valid:]
    return DataSplits(
        train=tuple(int(i) for i in np.sort(train)),
        valid=tuple(int(i) for i in np.sort(valid)),
        holdout=tuple(int(i) for i in np.sort(holdout)),
        strategy=config.strategy,
    )


def take_rows(frame: pd.DataFrame, positions: Sequence[int]) -> pd.DataFrame:
    """The rows at `positions`, renumbered from 0."""
    return frame.iloc[list(positions)].reset_index(drop=True)


def labelled_rows(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The rows that have a target, renumbered: row i here is row i of `prepare_frame`'s output."""
    return frame[frame[spec.target].notna().to_numpy()].reset_index(drop=True)


def prepare_splits(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> PreparedData:
    """Train / early-stopping / holdout frames, plus the raw training rows for the contract."""
    usable = labelled_rows(frame, spec)
    prepared = prepare_frame(usable, spec)
    splits = split_frame(prepared, spec, config)
    train, holdout = take_rows(prepared, splits.train), take_rows(prepared, splits.holdout)
    leaked: list[str] = []
    if spec.image_column is not None:  # a copy of a training image would flatter the holdout
        from mlgov.data.images.manifest import image_leakage

        leaked = image_leakage(train, holdout)
        holdout = holdout[~holdout[spec.image_column].isin(leaked)].reset_index(drop=True)
    return PreparedData(
        train=train,
        valid=take_rows(prepared, splits.valid),
        holdout=holdout,
        raw_train=take_rows(usable, splits.train),
        strategy=splits.strategy,
        leaked=tuple(leaked),
    )
