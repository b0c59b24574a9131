"""Bad image inputs, as a careless user or an attacker would give them: every one a clean answer.

Each case runs the real `mlgov` entry point in-process (on the session's Prefect server) with a
folder or manifest of small digit images plus one bad thing, and asserts the exit code, the answer
(one `mlgov: ` line naming the input, or for a batch the contract's refusal or its scores), no
traceback, that nothing was registered or half-written, that the process's peak resident memory
rose by at most `MAX_GROWTH` during the case (the high-water mark is reset before it: the test
process itself already holds torch, fastai, Great Expectations, Evidently and Prefect) and that it
answered within `HANG_GUARD_S`. The cases are a table (`CASES`) of `train`, `monitor` and
`predict` rows; a new command's cases are rows with their own argv helper.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cli.main import main
from mlgov.data.images.digits import write_digits, write_digits_batch

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "pictures"
SIZE = 16
CLASSES = range(3)
MAX_GROWTH = 1024**3
HANG_GUARD_S = 120
PARAMS = (
    "training: {epochs: 1, batch_size: 32, image: {image_size: 16, augment: false}}\n"
    "gate: {require_beats_baseline: false}\n"
)
AIOHTTP_MISSING = importlib.util.find_spec("aiohttp") is None

Outcome = Literal["refused", "not-scored", "scored"]


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments, the exit code, and what the answer must say.

    `refused`: one `mlgov: ` line that says every word of `says`. `not-scored`: the batch was read
    and the contract refused it (`--fail-on-invalid` exits 3), its reasons saying `says`.
    `scored`: the batch was read and scored; `check` looks at its outcome (and the case's folder).
    """

    name: str
    argv: Callable[[Path], list[str]]
    code: int
    says: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    outcome: Outcome = "refused"
    check: Callable[[dict[str, Any], Path], None] | None = None


# ---- files


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _bilevel_png(side: int) -> bytes:
    """A valid all-black 1-bit PNG of `side`² pixels: 144 megapixels take about 20 KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    row = b"\x00" * (1 + (side + 7) // 8)
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _bmp_header_only(width: int, height: int) -> bytes:
    """A 24-bit BMP whose header claims `width`×`height` pixels and that holds none of them."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def _noise_png(side: int = 64) -> bytes:
    return _png(np.random.default_rng(5).integers(0, 256, (side, side, 3), dtype=np.uint8))


def _truncated_png() -> bytes:
    return _noise_png()[:300]


def _labelled(d: Path) -> Path:
    """60 digits of the classes 0–2, `set/photos/<label>/<file>`: the training set every case
    spoils (a manifest goes in `set/`)."""
    return write_digits(d / "set" / "photos", size=SIZE, classes=CLASSES, limit=60, seed=4)


def _unlabelled(d: Path) -> Path:
    """40 digits in a flat folder `set/batch`: the production batch every monitor case spoils."""
    return write_digits_batch(
        d / "set" / "batch", "none", size=SIZE, rows=40, seed=6, labelled=False, classes=CLASSES
    )


def _secret(d: Path) -> Path:
    """A readable image outside every data folder of the case (`private/`, beside `set/`)."""
    path = d / "private" / "secret.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_noise_png(16))
    return path


def _manifest(folder: Path, extra: str, *, labelled: bool) -> str:
    """A CSV manifest next to `folder` listing its images by relative path, then `extra`."""
    images = sorted(folder.rglob("*.png"))
    table = pd.DataFrame({"image": [str(p.relative_to(folder.parent)) for p in images] + [extra]})
    if labelled:
        table["label"] = [p.parent.name for p in images] + ["1"]
    path = folder.parent / "manifest.csv"
    table.to_csv(path, index=False)
    return str(path)


# ---- how each spoiled input is made: in the training set (a class folder) or in the batch


Spoil = Callable[[Path, Path], Path | str | None]
"""(the images' folder, the case's folder) -> something placed there, or a location to read."""


def _fifo(folder: Path, d: Path) -> None:
    os.mkfifo(_inner(folder) / "x.png")


def _dev_zero(folder: Path, d: Path) -> None:
    (_inner(folder) / "zero.png").symlink_to("/dev/zero")


def _symlink_out(folder: Path, d: Path) -> None:
    (_inner(folder) / "away.png").symlink_to(_secret(d))


def _write(name: str, data: Callable[[], bytes]) -> Spoil:
    def spoil(folder: Path, d: Path) -> None:
        (_inner(folder) / name).write_bytes(data())

    return spoil


def _inner(folder: Path) -> Path:
    """Where a spoiled file goes: class `1` of a labelled set, the batch folder itself."""
    return folder if _is_flat(folder) else folder / "1"


def _is_flat(folder: Path) -> bool:
    return not any(p.is_dir() for p in folder.iterdir())


def _listed(entry: Callable[[Path, Path], str]) -> Spoil:
    """A manifest of the folder's images with one more path, `entry(folder, d)`."""

    def spoil(folder: Path, d: Path) -> str:
        return _manifest(folder, entry(folder, d), labelled=not _is_flat(folder))

    return spoil


def _no_images(folder: Path, d: Path) -> str:
    empty = d / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here\n")
    return str(empty)


def _one_class(folder: Path, d: Path) -> str:
    only = d / "one-class"
    only.mkdir()
    (folder / "1").rename(only / "1")
    return str(only)


# ---- argv


def _config(d: Path) -> str:
    path = d / "params.yaml"
    path.write_text(PARAMS, encoding="utf-8")
    return str(path)


def _train_with(spoil: Spoil) -> Callable[[Path], list[str]]:
    def argv(d: Path) -> list[str]:
        folder = _labelled(d)
        data = spoil(folder, d) or folder
        return ["train", "--data", str(data), "--model", "newcomer", "--config", _config(d)]

    return argv


def _monitor_with(spoil: Spoil | None) -> Callable[[Path], list[str]]:
    def argv(d: Path) -> list[str]:
        folder = _unlabelled(d)
        data = (spoil(folder, d) if spoil else None) or folder
        return ["monitor", "--data", str(data), "--model", MODEL, "--json", "--fail-on-invalid"]

    return argv


def _predict_with(spoil: Spoil | None) -> Callable[[Path], list[str]]:
    def argv(d: Path) -> list[str]:
        folder = _unlabelled(d)
        data = (spoil(folder, d) if spoil else None) or folder
        return ["predict", "--model", MODEL, "--data", str(data), "--out", _scores(d), "--json"]

    return argv


def _scores(d: Path) -> str:
    return str(d / "scored.parquet")


def _sixteen_bit_folder(d: Path) -> Path:
    """The batch's digits as 16-bit grey PNGs (mode `I;16`), each level ×257."""
    folder = _unlabelled(d)
    for path in folder.glob("*.png"):
        grey = np.asarray(Image.open(path).convert("L")).astype(np.uint16) * 257
        path.write_bytes(_png(grey))
    return folder


def _sixteen_bit(d: Path) -> list[str]:
    return ["monitor", "--data", str(_sixteen_bit_folder(d)), "--model", MODEL, "--json"]


def _sixteen_bit_predict(d: Path) -> list[str]:
    folder = _sixteen_bit_folder(d)
    return ["predict", "--model", MODEL, "--data", str(folder), "--out", _scores(d), "--json"]


def _scored_like_8_bit(summary: dict[str, Any], d: Path) -> None:
    """Every 16-bit file scored, with the classes its 8-bit twin gets (Pillow clipped it white)."""
    scored = pd.read_parquet(_scores(d)).sort_values("image")
    assert summary["n_rows"] == len(scored) == 40
    twin = d / "twin"
    twin.mkdir()
    for path in (d / "set" / "batch").glob("*.png"):
        levels = np.asarray(Image.open(path)) // 257
        (twin / path.name).write_bytes(_png(levels.astype(np.uint8)))
    out = d / "twin.parquet"
    assert main(["predict", "--model", MODEL, "--data", str(twin), "--out", str(out)]) == 0
    narrow = pd.read_parquet(out).sort_values("image")
    assert list(scored["prediction"]) == list(narrow["prediction"])
    probabilities = [c for c in scored.columns if c.startswith("proba_")]
    assert np.allclose(scored[probabilities], narrow[probabilities], atol=1e-4)


def _as_8_bit_twin(batch: dict[str, Any], d: Path) -> None:
    """Pillow clipped 16-bit grey to white (brightness 0.998: a brightness drift every time).
    Read by its range, the 16-bit batch has the statistics of its 8-bit twin: the same effects."""
    from mlgov.storage.monitoring_store import MonitoringStore

    assert "brightness" not in batch["drifted_columns"], batch["drifted_columns"]
    twin = d / "twin"
    twin.mkdir()
    for path in (d / "set" / "batch").glob("*.png"):
        levels = np.asarray(Image.open(path)) // 257
        (twin / path.name).write_bytes(_png(levels.astype(np.uint8)))
    assert main(["monitor", "--data", str(twin), "--model", MODEL, "--json"]) == 0
    with MonitoringStore.from_settings() as store:
        wide = store.get_batch(MODEL, batch["batch_id"]).column_effects
        (narrow,) = (r.column_effects for r in store.history(MODEL, limit=1))
    for name in ("brightness", "contrast", "sharpness"):
        assert wide[name] == pytest.approx(narrow[name], abs=1e-3), (name, wide, narrow)


URL = "http://127.0.0.1:9/pics/remote.png"
HTTP_SAYS = ("127.0.0.1:9/pics/remote.png", "aiohttp") if AIOHTTP_MISSING else (URL,)
BIG_PIXELS = {"MLGOV_IMAGE_MAX_PIXELS": "150000000"}

SPOILS: tuple[tuple[str, Spoil, tuple[str, ...], dict[str, str]], ...] = (
    # (name, spoil, the words of the answer, environment)
    ("fifo-named-png", _fifo, ("x.png", "FIFO"), {}),
    ("symlink-to-dev-zero", _dev_zero, ("zero.png", "outside the data folder"), {}),
    (
        "symlink-to-dev-zero-allowed-outside",
        _dev_zero,
        ("zero.png", "character device"),
        {"MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT": "true"},
    ),
    ("symlink-outside-folder", _symlink_out, ("away.png", "outside the data folder"), {}),
    (
        "manifest-absolute-path-outside",
        _listed(lambda f, d: str(_secret(d))),
        ("secret.png", "outside"),
        {},
    ),
    (
        "manifest-dotdot-path",
        _listed(lambda f, d: str(Path("..") / _secret(d).relative_to(d))),  # from set/
        ("secret.png", "outside"),
        {},
    ),
    (
        "manifest-file-url-outside",
        _listed(lambda f, d: f"file://{_secret(d)}"),
        ("secret.png", "outside"),
        {},
    ),
    ("manifest-missing-files", _listed(lambda f, d: "gone/nowhere.png"), ("do not exist",), {}),
    ("manifest-http-url", _listed(lambda f, d: URL), HTTP_SAYS, {}),
    (
        "bilevel-png-12000-squared",
        _write("huge.png", lambda: _bilevel_png(12_000)),
        ("huge.png", "144,000,000 pixels", "MLGOV_IMAGE_MAX_PIXELS"),
        {},
    ),
    (
        "decompression-bomb",
        _write("bomb.png", lambda: _bilevel_png(30_000)),
        ("bomb.png", "900,000,000 pixels"),
        {},
    ),
    (
        "bmp-header-claims-billions",
        _write("claim.bmp", lambda: _bmp_header_only(60_000, 60_000)),
        ("claim.bmp", "pixels"),
        {},
    ),
    (
        "oversized-file",
        _write("big.png", _noise_png),
        ("big.png", "MLGOV_IMAGE_MAX_BYTES"),
        {"MLGOV_IMAGE_MAX_BYTES": "4096"},
    ),
    ("folder-without-images", _no_images, ("no-images",), {}),
)
"""Inputs refused while reading, by `train` and by `monitor` alike."""

UNREADABLE: tuple[tuple[str, str, Callable[[], bytes]], ...] = (
    ("truncated-png", "cut.png", _truncated_png),
    ("zero-byte-image", "empty.png", lambda: b""),
    ("text-named-png", "notes.png", lambda: b"just some text, not a picture\n"),
)
"""Files that are read but do not decode: the contract refuses the data."""

CASES: tuple[Case, ...] = (
    *(Case(f"train-{name}", _train_with(s), 1, says, env) for name, s, says, env in SPOILS),
    *(
        Case(f"train-{name}", _train_with(_write(file, data)), 1, ("validation", "readable", file))
        for name, file, data in UNREADABLE
    ),
    Case("train-one-class-only", _train_with(_one_class), 1, ("one class",)),
    *(Case(f"monitor-{name}", _monitor_with(s), 1, says, env) for name, s, says, env in SPOILS),
    *(
        Case(
            f"monitor-{name}",
            _monitor_with(_write(file, data)),
            3,
            ("readable", file),
            {},
            "not-scored",
        )
        for name, file, data in UNREADABLE
    ),
    Case(  # allowed, it is decoded within bounds, then scored with the contract's findings
        "monitor-bilevel-png-12000-squared-allowed",
        _monitor_with(_write("huge.png", lambda: _bilevel_png(12_000))),
        0,
        ("width", "huge.png"),
        BIG_PIXELS,
        outcome="scored",
    ),
    Case("monitor-16-bit-batch", _sixteen_bit, 0, outcome="scored", check=_as_8_bit_twin),
    *(Case(f"predict-{name}", _predict_with(s), 1, says, env) for name, s, says, env in SPOILS),
    *(
        Case(f"predict-{name}", _predict_with(_write(file, data)), 1, ("validation", "readable"))
        for name, file, data in UNREADABLE
    ),
    Case(
        "predict-16-bit-batch", _sixteen_bit_predict, 0, outcome="scored", check=_scored_like_8_bit
    ),
)


# ---- the registry and the store, before and after


def _reset_peak_rss() -> int:
    """Reset this process's high-water mark (VmHWM) to its resident size now, and return it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmHWM")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/self/status")


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry whose champion learnt the digits 0–2 at 16 px, trained once for the module."""
    home = tmp_path_factory.mktemp("image-matrix-home")
    data = tmp_path_factory.mktemp("image-matrix-data")
    folder = write_digits(data / "train", size=SIZE, classes=CLASSES, limit=240, seed=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        argv = ["train", "--data", str(folder), "--model", MODEL, "--config", _config(data)]
        assert main([*argv, "--json"]) == 0
        yield home


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_image_input_is_one_clean_answer(
    case: Case,
    trained_home: Path,
    registry_state: Callable[[Path], Any],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(trained_home))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    argv = case.argv(tmp_path)
    before = registry_state(trained_home)
    capfd.readouterr()
    resident = _reset_peak_rss()
    started = time.monotonic()

    code = main(argv)

    took, peak = time.monotonic() - started, _status("VmHWM")
    out, err = capfd.readouterr()
    assert code == case.code, f"{case.name}: exit {code}, stderr: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    assert registry_state(trained_home) == before
    assert peak - resident <= MAX_GROWTH, (
        f"{case.name}: peak RSS {peak / 2**30:.2f} GiB, {resident / 2**30:.2f} GiB before"
    )
    assert took < HANG_GUARD_S, f"{case.name}: {took:.0f} s"
    if case.outcome == "refused":
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mlgov: "), f"{case.name}: {err!r}"
        assert out == ""
        for word in case.says:
            assert word.lower() in lines[0].lower(), f"{case.name}: {word!r} not in {lines[0]!r}"
        # Nothing half-written: no scores, no partial file, no scratch manifest left behind.
        assert [
            p.name for p in tmp_path.rglob("*") if "scored" in p.name or ".partial-" in p.name
        ] == []
        assert not list((trained_home / "work").rglob("image-batch.parquet"))
        return
    assert "mlgov: " not in err, err
    if argv[0] == "predict":
        assert case.check is not None
        case.check(json.loads(out), tmp_path)
        return
    (batch,) = json.loads(out)["batches"]
    assert batch["scored"] is (case.outcome == "scored"), batch
    reasons = json.dumps(batch["validation"]).lower()
    for word in case.says:
        assert word.lower() in reasons, f"{case.name}: {word!r} not in {reasons[:500]}"
    if case.check is not None:
        case.check(batch, tmp_path)


def test_the_matrix_covers_train_monitor_and_predict() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and len(names) >= 25
    assert {name.split("-")[0] for name in names} == {"train", "monitor", "predict"}
