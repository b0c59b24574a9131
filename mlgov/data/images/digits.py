"""Real images made here, never downloaded: scikit-learn's bundled handwritten digits as PNG files.

1,797 scans of 8×8 grey levels (0–16), written as RGB PNGs of `size` pixels in the fastai/ImageNet
layout: one sub-folder per class. Tests, the demo and the benches build on it, and on the seeded
drift scenarios of `write_digits_batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np

Scenario = Literal[
    "none",
    "brightness",
    "contrast",
    "blur",
    "noise",
    "rotation",
    "greyscale",
    "new-class",
    "swapped-labels",
    "corrupt",
]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
NEW_CLASS = 9
"""The class `new-class` batches are made of: train with `classes=range(9)` and it is unseen."""
CORRUPT_SHARE = 0.2
"""Share of a `corrupt` batch's files that are broken: half truncated PNGs, half random bytes."""


def digit_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """All digits as uint8 RGB arrays (n, size, size, 3) and their labels (n,)."""
    images, labels = _digits(size)
    return images.copy(), labels.copy()


@lru_cache(maxsize=4)
def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Loading and resizing costs about a second: once per size and process."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.clip(bunch.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    resized = np.stack(
        [
            np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BILINEAR))
            for g in grey
        ]
    )
    rgb = np.repeat(resized[..., None], 3, axis=3)
    return rgb, bunch.target.astype(np.int64)


def write_digits(
    folder: Path,
    *,
    size: int = 32,
    limit: int | None = None,
    seed: int = 0,
    classes: Iterable[int] | None = None,
) -> Path:
    """Write the digits (of `classes` only, when given; a seeded sample of `limit`) as
    `folder/<label>/<n>.png`: `classes=range(9)` leaves 9 a class the model never saw."""
    from PIL import Image

    images, labels = digit_images(size)
    order = np.random.default_rng(seed).permutation(len(labels))
    if classes is not None:
        order = order[np.isin(labels[order], list(classes))]
    if limit is not None:
        order = order[:limit]
    folder = Path(folder)
    for index in order:
        target = folder / str(labels[index])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(target / f"{index:04d}.png")
    return folder


def write_digits_batch(
    folder: Path,
    scenario: Scenario,
    *,
    size: int = 32,
    rows: int = 200,
    seed: int = 0,
    labelled: bool = True,
    classes: Iterable[int] | None = None,
) -> Path:
    """A seeded batch of `rows` digit PNGs under `folder`, drifted as `scenario` says.

    `none` is a clean sample; `brightness` adds 0.3 to every grey level; `contrast` halves the
    spread around the mean; `blur` is a Gaussian blur (radius size/16); `noise` adds Gaussian noise
    (sd 0.1); `rotation` turns each digit 30–60° either way; `greyscale` writes mode `L` files
    instead of RGB; `new-class` is only 9s (see `NEW_CLASS`); `swapped-labels` files each image
    under another class (a seeded pairing of the classes, each pair swapped); `corrupt` breaks
    `CORRUPT_SHARE` of the files. Labelled batches use the `<label>/<file>` layout, unlabelled
    ones a flat folder; `classes` keeps the batch to those digits (not for `new-class`). Sampling
    repeats digits only when `rows` exceeds what there is.
    """
    from PIL import Image

    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng(seed)
    images, labels = digit_images(size)
    pool = (
        np.flatnonzero(labels == NEW_CLASS) if scenario == "new-class" else np.arange(len(labels))
    )
    if classes is not None and scenario != "new-class":
        pool = pool[np.isin(labels[pool], list(classes))]
    order = rng.choice(pool, size=rows, replace=rows > len(pool))
    names = _swapped_names(labels[pool], rng) if scenario == "swapped-labels" else None
    drift = _DRIFTS.get(scenario)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for number, index in enumerate(order):
        label = str(labels[index]) if names is None else names[int(labels[index])]
        target = folder / label if labelled else folder
        target.mkdir(exist_ok=True)
        path = target / f"{seed}-{number:05d}-{index:04d}.png"
        pixels = images[index] if drift is None else drift(images[index], rng, size)
        image = Image.fromarray(pixels)
        image = image.convert("L") if scenario == "greyscale" else image
        image.save(path)
        if scenario == "corrupt" and rng.random() < CORRUPT_SHARE:
            _break_file(path, rng)
    return folder


def _swapped_names(labels: np.ndarray, rng: np.random.Generator) -> dict[int, str]:
    """Each class named as another: the classes shuffled and swapped in pairs (an odd one stays)."""
    classes = rng.permutation(np.unique(labels))
    names = {int(c): str(c) for c in classes}
    for first, second in zip(classes[0::2], classes[1::2], strict=False):
        names[int(first)], names[int(second)] = str(second), str(first)
    return names


def _break_file(path: Path, rng: np.random.Generator) -> None:
    """Half the broken files lose their second half (truncated), half become random bytes."""
    data = path.read_bytes()
    if rng.random() < 0.5:
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())


def _shifted(pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    return np.clip(pixels.astype(np.float32) + 0.3 * 255, 0, 255).astype(np.uint8)


def _flattened(pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    values = pixels.astype(np.float32)
    return np.clip(values.mean() + 0.5 * (values - values.mean()), 0, 255).astype(np.uint8)


def _noisy(pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    noise = rng.normal(0.0, 0.1 * 255, pixels.shape[:2])[..., None]
    return np.clip(pixels.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _blurred(pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    from PIL import Image, ImageFilter

    radius = max(size / 16, 0.5)
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)))


def _rotated(pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    from PIL import Image

    angle = float(rng.uniform(30, 60) * rng.choice([-1, 1]))
    image = Image.fromarray(pixels).rotate(angle, resample=Image.Resampling.BILINEAR)
    return np.asarray(image)


_DRIFTS: dict[str, Callable[[np.ndarray, np.random.Generator, int], np.ndarray]] = {
    "brightness": _shifted,
    "contrast": _flattened,
    "blur": _blurred,
    "noise": _noisy,
    "rotation": _rotated,
}
