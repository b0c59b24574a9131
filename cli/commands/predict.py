"""`mlgov predict`: score a batch file with a registered version (flow `score-batch`), ad hoc."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cli.commands.common import (
    EXIT_OK,
    CommandError,
    emit,
    hide_expected_tracebacks,
)
from cli.runtime.session import run_flow

SCORING_LIBRARIES = ("great_expectations", "torch", "pyarrow.parquet")


def _render(summary: dict[str, Any]) -> str:
    predicted = summary.get("predicted")
    values = summary.get("values")
    if predicted:
        total = max(summary["n_rows"], 1)
        result = ", ".join(f"{c} {n / total:.1%}" for c, n in predicted.items())
    elif values:
        result = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    else:
        result = "–"
    return (
        f"{summary['model']} v{summary['version']}: scored {summary['n_rows']:,} rows of "
        f"{summary['data']} into {summary['out']} in {summary['seconds']:.1f} s ({result}); "
        f"recorded as batch {summary['batch_id']}"
    )


def _preflight(params: Any) -> None:
    """Answer before a flow run starts: an unknown model or alias, an output that cannot be
    written, a batch that cannot be read (the flow checks all of them again)."""
    from mlgov.data.source import expand_dates, open_batch
    from mlgov.domain.catalogue import CHAMPION
    from mlgov.domain.names import parse_model_ref
    from mlgov.scoring.image_batch import check_image_batch
    from mlgov.scoring.output import check_output, scoring_id_column
    from mlgov.storage.registry import ModelRegistry

    name, version, alias = parse_model_ref(params.model)
    with ModelRegistry.from_settings() as registry:  # reading creates no registry
        mv = registry.get(
            name, version=version, alias=alias or (CHAMPION if version is None else None)
        )
    spec = mv.spec
    now = datetime.now(UTC)
    data, out = expand_dates(params.data, now), expand_dates(params.out, now)
    check_output(out, data, spec.classes, scoring_id_column(spec, params.id_column))
    if spec.image_column is None:
        open_batch(data, params.id_column)
    else:  # describing the images is the flow's first step: here, only that there are some
        check_image_batch(data)


def cmd_predict(args: argparse.Namespace) -> int:
    from flows.score_batch import ScoringParameters, score_batch
    from mlgov.data.errors import DataError
    from mlgov.domain.errors import RegistryError

    hide_expected_tracebacks(DataError, RegistryError)
    fields = {"model": args.model, "data": args.data, "out": args.out, "id_column": args.id_column}
    if args.chunk_rows is not None:
        fields["chunk_rows"] = args.chunk_rows
    # An invalid value ends as every command's does (`main`): "invalid parameter …", exit 2.
    params = ScoringParameters.model_validate(fields)
    try:
        _preflight(params)
        summary = run_flow(score_batch, params, warm=SCORING_LIBRARIES)
    except (DataError, RegistryError) as exc:  # the project's own errors only: a bug shows
        raise CommandError(str(exc)) from exc
    emit(summary.model_dump(mode="json"), args.json, _render)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser(
        "predict", help="score a batch with a registered model: contract first, then chunks"
    )
    predict.add_argument(
        "--model", required=True, help="NAME (its champion), NAME@ALIAS or NAME:VERSION"
    )
    predict.add_argument(
        "--data",
        required=True,
        help="Parquet/CSV path or fsspec URL to score; for an image model also a folder of "
        "images, a glob of folders or a manifest table",
    )
    predict.add_argument(
        "--out", required=True, help="Parquet/CSV path or URL to write (replaced when complete)"
    )
    predict.add_argument(
        "--id-column",
        help="column copied beside each row's scores (to join labels later); image models: "
        "the file path (`image`) by default",
    )
    predict.add_argument(
        "--chunk-rows", type=int, help="rows scored at a time (default 200,000; bounds memory)"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    predict.set_defaults(func=cmd_predict, prefect_api=True)
