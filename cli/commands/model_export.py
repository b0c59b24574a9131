"""`mlgov models export NAME:VERSION --format onnx --out DIR`: a version to serve without torch.

The version is loaded as every command loads it (files hashed against the index, the package
checked), exported, and the export checked against the package before it is renamed into DIR.
No flow run: exporting changes nothing in the registry. Needs the optional `onnx` extra.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from cli.commands.common import EXIT_OK, EXIT_USAGE, CommandError, emit
from cli.commands.model_operations import open_registry

FORMATS = ("onnx",)


def _file_entry(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def cmd_models_export(args: argparse.Namespace) -> int:
    from mlgov.domain.catalogue import LEGACY_MODEL_FILE
    from mlgov.domain.names import parse_model_ref
    from mlgov.packaging.onnx_export import export_onnx
    from mlgov.packaging.package import PackagedModel
    from mlgov.versions.loading import is_packaged, load_version_model

    _, version, alias = parse_model_ref(args.ref)
    if version is None and alias is None:
        raise CommandError(
            f"models export {args.ref}: name the version, NAME:VERSION or NAME@ALIAS", EXIT_USAGE
        )
    out = Path(args.out)
    with open_registry() as registry:
        mv = registry.resolve(args.ref)
        if not is_packaged(mv):
            raise CommandError(
                f"{mv.ref} is stored only as a pickle ({LEGACY_MODEL_FILE}); convert it into a "
                f"package first: mlgov models migrate {mv.ref} --allow-pickle"
            )
        model = load_version_model(registry, mv, allow_pickle=False)
    if not isinstance(model, PackagedModel):  # an image model: ONNX export is for tables
        raise CommandError(
            f"{mv.ref} is an image model: ONNX export covers tabular packages only "
            f"(score its images with: mlgov predict --model {mv.ref} --data <folder> --out "
            f"<file>, or mlgov.load_model({mv.ref!r}).predict('<folder>'))"
        )
    try:
        done = export_onnx(model, out)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write the export: {exc.strerror or exc}") from exc
    payload = {
        "model": mv.name,
        "version": mv.version,
        "format": args.format,
        "out": str(out),
        "files": [_file_entry(done.onnx_path), _file_entry(done.manifest_path)],
        "rows_checked": done.rows_checked,
        "max_abs_difference": done.max_abs_difference,
        "seconds": round(done.seconds, 3),
    }

    def human(p: dict[str, Any]) -> str:
        return "\n".join(
            [
                f"{p['model']} v{p['version']} exported as {p['format']} into {p['out']}",
                *[
                    f"  {f['name']:<12} {f['size']:>10} B  sha256 {f['sha256'][:16]}…"
                    for f in p["files"]
                ],
                f"  verified: onnxruntime gives the package's outputs within "
                f"{p['max_abs_difference']:.1e} on {p['rows_checked']} probe rows",
                "  serve without torch: mlgov.packaging.onnx_model"
                f".load_onnx_dir({p['out']!r}).scores(frame)",
            ]
        )

    emit(payload, args.json, human)
    return EXIT_OK


def add_export_parser(models_sub: argparse._SubParsersAction) -> None:
    export = models_sub.add_parser(
        "export",
        help="write a verified version as ONNX (plus its model.json) to serve without torch",
    )
    export.add_argument("ref", metavar="NAME:VERSION", help="or NAME@ALIAS")
    export.add_argument("--format", choices=FORMATS, default="onnx")
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    export.add_argument("--json", action="store_true")
    export.set_defaults(func=cmd_models_export)
