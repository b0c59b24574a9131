"""The one decode: 16-bit and float images by their real range, pixel limits from the header."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from mlgov.data.images.decode import UnreadableImage, decode_image, network_image
from mlgov.data.images.limits import ImageRefused
from mlgov.data.images.statistics import image_statistics
from mlgov.packaging.image import ImagePreprocessor
from mlgov.packaging.manifest import ImagePreprocessing

SIDE = (40, 30)  # width, height


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of any size, a few KB per hundred megapixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def wide() -> np.ndarray:
    """A 16-bit picture with smooth gradients and noise: every level of the 8-bit range in use."""
    rng = np.random.default_rng(7)
    width, height = SIDE
    ramp = np.linspace(0, 65535, width)[None, :] * np.linspace(0.2, 1.0, height)[:, None]
    noisy = ramp + rng.normal(0, 2000, (height, width))
    return np.clip(noisy, 0, 65535).astype(np.uint16)


def as_8bit(wide: np.ndarray) -> np.ndarray:
    return np.rint(wide / 257.0).astype(np.uint8)


def sixteen_bit_files(wide: np.ndarray) -> dict[str, bytes]:
    """The same picture stored in each wide mode Pillow writes: I;16 PNG and TIFF, I;16B TIFF,
    32-bit I TIFF, and F (0..1) TIFF."""
    i16 = Image.fromarray(wide)
    raw = wide.astype(">u2").tobytes()
    big_endian = Image.frombytes("I;16B", i16.size, raw, "raw", "I;16B")
    return {
        "png-I;16": encoded(i16),
        "tiff-I;16": encoded(i16, "TIFF"),
        "tiff-I;16B": encoded(big_endian, "TIFF"),  # written as a big-endian (MM) TIFF
        "tiff-I": encoded(Image.fromarray(wide.astype(np.int32)), "TIFF"),
        "tiff-F": encoded(Image.fromarray((wide / 65535.0).astype(np.float32)), "TIFF"),
    }


@pytest.mark.parametrize("kind", ["png-I;16", "tiff-I;16", "tiff-I;16B", "tiff-I", "tiff-F"])
def test_a_wide_image_gives_the_statistics_and_inputs_of_its_8_bit_twin(
    wide: np.ndarray, kind: str
) -> None:
    data = sixteen_bit_files(wide)[kind]
    stored_mode = Image.open(io.BytesIO(data)).mode
    assert stored_mode == kind.split("-", 1)[1]
    twin = encoded(Image.fromarray(as_8bit(wide)))

    row, reference = image_statistics(data, kind), image_statistics(twin)
    assert row["readable"] is True and row["mode"] == stored_mode and row["channels"] == 1.0
    assert (row["width"], row["height"]) == (float(SIDE[0]), float(SIDE[1]))
    for name in ("brightness", "contrast"):
        assert row[name] == pytest.approx(reference[name], abs=1 / 255)
    assert row["sharpness"] == pytest.approx(reference["sharpness"], rel=0.02)

    preprocessor = ImagePreprocessor(ImagePreprocessing(size=(16, 20), mean=None, std=None))
    inputs, expected = preprocessor.array(kind, data), preprocessor.array("twin", twin)
    assert inputs.shape == expected.shape == (3, 16, 20)
    assert float(np.abs(inputs - expected).max()) <= 1 / 255 + 1e-6


def test_uniform_16_bit_noise_is_mid_grey_not_white() -> None:
    """Pillow's own `convert` clipped it at 255 (brightness 0.998)."""
    noise = np.random.default_rng(0).integers(0, 65536, (64, 64), dtype=np.uint16)
    row = image_statistics(encoded(Image.fromarray(noise)))
    assert row["brightness"] == pytest.approx(0.5, abs=0.02)
    assert row["contrast"] == pytest.approx(1 / np.sqrt(12), abs=0.02)
    assert np.asarray(network_image(encoded(Image.fromarray(noise)), "n", (8, 8))).mean() < 140


def test_extreme_16_bit_and_float_levels_are_black_and_white() -> None:
    for pixels in (
        np.array([[0, 65535]], dtype=np.uint16),
        np.array([[-3.0, 7.0]], dtype=np.float32),  # float images are 0..1: outside is clipped
    ):
        grey, stored = decode_image(encoded(Image.fromarray(pixels), "TIFF"), "x", bands="L")
        assert np.asarray(grey).tolist() == [[0, 255]]
        assert (stored.width, stored.height) == (2, 1)


def test_a_large_png_is_reduced_right_after_decoding_and_keeps_its_stored_size() -> None:
    pixels = np.zeros((1200, 2600), dtype=np.uint8)
    pixels[:, 1300:] = 255
    data = encoded(Image.fromarray(pixels))
    image, stored = decode_image(data, "big.png", bands="RGB", reduce_to=(512, 512))
    assert (stored.width, stored.height, stored.mode) == (2600, 1200, "L")
    assert image.mode == "RGB" and image.size == (1300, 600)  # the largest whole factor: 2
    small = network_image(data, "big.png", (64, 64))
    assert small.size == (-(-2600 // 9), -(-1200 // 9))  # both sides stay ≥ 2 × 64
    assert np.asarray(small).mean() / 255 == pytest.approx(0.5, abs=0.01)


def test_too_many_pixels_is_refused_from_the_header_before_decoding() -> None:
    data = bilevel_png(12_000, 12_000)  # 144 megapixels in about 20 KB
    assert len(data) < 100_000
    started = time.perf_counter()
    with pytest.raises(ImageRefused, match=r"'huge.png' has 144,000,000 pixels \(12,000×12,000\)"):
        image_statistics(data, "huge.png")
    assert time.perf_counter() - started < 1.0  # nothing was decoded
    with pytest.raises(ImageRefused, match="MLGOV_IMAGE_MAX_PIXELS"):
        network_image(data, "huge.png", (32, 32))


def test_a_decompression_bomb_is_refused_with_its_pixel_count() -> None:
    data = bilevel_png(30_000, 30_000)  # over twice the limit: Pillow's own check answers first
    with pytest.raises(ImageRefused, match=r"'bomb.png' has 900,000,000 pixels.*100,000,000"):
        decode_image(data, "bomb.png", bands="L")
    assert Image.MAX_IMAGE_PIXELS == 100_000_000  # Pillow's limit follows the setting


def test_the_pixel_limit_is_a_setting_and_a_large_bilevel_image_decodes_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLGOV_IMAGE_MAX_PIXELS", "150000000")
    row = image_statistics(bilevel_png(12_000, 12_000), "huge.png")
    assert row["readable"] is True and row["mode"] == "1"
    assert (row["width"], row["brightness"], row["sharpness"]) == (12_000.0, 0.0, 0.0)
    monkeypatch.setenv("MLGOV_IMAGE_MAX_PIXELS", "1000")
    with pytest.raises(ImageRefused, match="1,200 pixels"):
        image_statistics(encoded(Image.new("RGB", (40, 30))), "small.png")


@pytest.mark.parametrize("cut", [0, 19, 300], ids=["empty", "header", "truncated"])
def test_bytes_that_do_not_decode_are_one_line_naming_the_image(cut: int) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8)
    with pytest.raises(UnreadableImage, match=r"^cannot decode image 'x\.png': \S"):
        network_image(encoded(Image.fromarray(noise))[:cut], "x.png", (16, 16))
