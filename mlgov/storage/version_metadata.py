"""What the registry index keeps about a version, typed, and how rows of older schemas are read.

The metadata is stored as JSON beside the version's files so the registry can answer queries
(verdict, metrics, lineage) without opening them. Schema 1 is the untyped mapping written before
`schema_version` existed; a row of it is upgraded when read (keys the schema does not know, or
values it cannot read, are kept under `legacy`), and `mlgov models migrate` rewrites it stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    JsonValue,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from mlgov.domain.errors import RegistryError
from mlgov.domain.features import FeatureSpec
from mlgov.domain.sampling import TrainingSample
from mlgov.domain.verdicts import Verdict
from mlgov.drift.decision import DriftDecision

METADATA_SCHEMA_VERSION: Final = 2
"""The schema this code writes; rows without `schema_version` are schema 1."""

_FROZEN = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")
"""`ser_json_inf_nan`: a NaN stays NaN when dumped (a wrapping serializer would make it null
unnoticed), so the registry's strict JSON refuses it and the writer decides."""
_SET_ONLY_WHEN_KNOWN = ("gate_verdict", "cloned_from")
"""Keys a stored row has only once something set them (absent, not null); the champion at
registration is there exactly when `gate_verdict` is (None: the alias was unset)."""


def json_safe(value: Any) -> Any:
    """Strict JSON has no NaN (an AUC on a one-class holdout is NaN): it becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class CodeVersion(BaseModel):
    """The git commit of the code that ran and whether it had uncommitted changes (None: unknown)."""

    model_config = _FROZEN

    commit: str | None = None
    dirty: bool | None = None


def _without_unset(stored: dict[str, Any], key: str) -> dict[str, Any]:
    """A field added to the schema later is stored only when set: older rows keep their keys."""
    if stored.get(key) is None:
        stored.pop(key, None)
    return stored


class CardData(BaseModel):
    """The training table a version was fitted on, as the model card and the index record it."""

    model_config = _FROZEN

    location: str
    n_rows: int
    n_columns: int
    fingerprint: str
    split: str
    sample: TrainingSample | None = None
    """The rows trained on when the table was larger than `training.max_rows` (None: all)."""

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A table trained on whole stores the keys it always did."""
        return _without_unset(handler(self), "sample")


class CardEpoch(BaseModel):
    """One epoch of the training history (a diverged loss would be stored as null)."""

    model_config = _FROZEN

    epoch: int
    train_loss: float | None
    valid_loss: float | None
    metrics: dict[str, float | None]
    seconds: float
    lr: float


class CardTraining(BaseModel):
    """How training went; further fields of the training result are kept as they are."""

    model_config = ConfigDict(frozen=True, extra="allow", ser_json_inf_nan="constants")

    best_epoch: int
    best_valid_loss: float
    stopped_early: bool
    epochs_run: int
    device: str
    mixed_precision: bool
    seconds: float
    history: list[CardEpoch] = []


class DriftDigest(BaseModel):
    """Drift between the champion's training data and the version's, as the index keeps it."""

    model_config = _FROZEN

    dataset_drift: bool
    drifted_columns: tuple[str, ...]
    share_drifted: float
    decision: DriftDecision | None = None
    """The configured rule's verdict; None in digests stored before the rule was configurable."""

    @property
    def recorded_decision(self) -> DriftDecision:
        """What the run decided; a digest without `decision` alerted on Evidently's share rule,
        which is what its other fields say."""
        if self.decision is not None:
            return self.decision
        return DriftDecision(
            drifted=self.dataset_drift, columns=self.drifted_columns, rule="evidently"
        )

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(handler(self), "decision")


class CloneOrigin(BaseModel):
    """Where a cloned version was copied from, by whom and when."""

    model_config = _FROZEN

    registry_url: str
    store_url: str
    name: str
    version: int
    location: str
    created_at: str
    actor: str
    cloned_at: str


class VerdictOutcome(BaseModel):
    """The verdict, the gate's own when registration overruled it, and the reasons: what the
    model card and the registry index both say about a version."""

    model_config = _FROZEN

    verdict: Verdict | None
    gate_verdict: Verdict | None = None
    reasons: tuple[str, ...] = ()

    def champion_changed(self, note: str) -> VerdictOutcome:
        """Registered unpromoted because another run moved the champion after the gate compared:
        CHAMPION_CHANGED, the gate's verdict kept as `gate_verdict`, the note first."""
        if self.verdict is Verdict.CHAMPION_CHANGED:
            return self
        return VerdictOutcome(
            verdict=Verdict.CHAMPION_CHANGED,
            gate_verdict=self.verdict,
            reasons=(note, *self.reasons),
        )


class VersionMetadata(BaseModel):
    """What the registry index keeps about a version (schema 2).

    Every field but `schema_version` may be absent: a version registered by hand, or by an older
    mlgov, records less than a training run does. `params` (the run's parameters, whose shape is
    the flow's) and `legacy` (keys of schema-1 rows this schema does not know) are the only
    untyped parts.
    """

    model_config = _FROZEN

    schema_version: Literal[2] = METADATA_SCHEMA_VERSION
    verdict: Verdict | None = None
    gate_verdict: Verdict | None = None
    """The gate's verdict, when registration overruled it (CHAMPION_CHANGED)."""
    reasons: tuple[str, ...] = ()
    primary_metric: str | None = None
    metrics: dict[str, float | None] = {}
    features: FeatureSpec | None = None
    data: CardData | None = None
    training: CardTraining | None = None
    drift: DriftDigest | None = None
    parent_champion: int | None = None
    champion_at_registration: int | None = None
    """Where the champion alias pointed when this version was registered unpromoted."""
    flow_run_id: str | None = None
    code: CodeVersion | None = None
    packages: dict[str, str] = {}
    params: dict[str, JsonValue] = {}
    validation: str | None = None
    cloned_from: CloneOrigin | None = None
    legacy: dict[str, JsonValue] = {}

    @classmethod
    def from_stored(cls, raw: object) -> VersionMetadata:
        """A stored row (or a mapping written as one), of this schema or an older one."""
        if isinstance(raw, VersionMetadata):
            return raw
        if not isinstance(raw, Mapping):
            raise RegistryError(f"metadata must be a mapping, got {type(raw).__name__}")
        schema = raw.get("schema_version")
        if schema is None:
            return cls._from_schema_1(raw)
        if schema != METADATA_SCHEMA_VERSION:
            raise RegistryError(
                f"metadata schema_version {schema!r} is not one this mlgov reads "
                f"(1 or {METADATA_SCHEMA_VERSION}); upgrade mlgov"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RegistryError(f"metadata does not match schema {schema}: {_first(exc)}") from exc

    @classmethod
    def _from_schema_1(cls, raw: Mapping[str, Any]) -> VersionMetadata:
        """Typed fields where the row's values fit them; everything else under `legacy`."""
        typed = set(cls.model_fields) - {"schema_version", "legacy"}
        known = {k: v for k, v in raw.items() if k in typed}
        legacy = {k: v for k, v in raw.items() if k not in typed}
        while True:
            try:
                return cls.model_validate({**known, "legacy": legacy})
            except ValidationError as exc:
                unreadable = {
                    e["loc"][0] for e in exc.errors() if e["loc"] and e["loc"][0] in known
                }
                if not unreadable:
                    raise RegistryError(
                        f"metadata is not JSON-serialisable: {_first(exc)}"
                    ) from exc
                legacy |= {str(key): known.pop(str(key)) for key in unreadable}

    @property
    def outcome(self) -> VerdictOutcome:
        return VerdictOutcome(
            verdict=self.verdict, gate_verdict=self.gate_verdict, reasons=self.reasons
        )

    def recorded_metrics(self) -> dict[str, float]:
        """The holdout metrics that were computed (a metric stored as null was not)."""
        return {name: value for name, value in self.metrics.items() if value is not None}

    def with_champion_changed(self, note: str, champion: int | None) -> VersionMetadata:
        """The metadata of a version registered unpromoted because another run moved the
        champion (to `champion`) after the gate compared."""
        changed = self.outcome.champion_changed(note)
        return self._replaced(
            verdict=changed.verdict,
            gate_verdict=changed.gate_verdict,
            reasons=changed.reasons,
            champion_at_registration=champion,
        )

    def with_clone_origin(self, origin: CloneOrigin) -> VersionMetadata:
        return self._replaced(cloned_from=origin)

    def _replaced(self, **changes: object) -> Self:
        """A validated copy (`model_copy(update=...)` would skip validation)."""
        return self.model_validate(dict(self) | changes)

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The stored form: no keys for what was never set, and no empty `legacy`."""
        data: dict[str, Any] = handler(self)
        if data.get("gate_verdict") is None:
            data.pop("champion_at_registration", None)
        for key in _SET_ONLY_WHEN_KNOWN:
            if data.get(key) is None:
                data.pop(key, None)
        if not data.get("legacy"):
            data.pop("legacy", None)
        return data


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "metadata"
    return f"{where}: {error['msg']}"
