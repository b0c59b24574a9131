"""Embedding drift with Evidently's own methods: same distribution passes, a moved or new cluster
does not, and the HTML report is Evidently's `EmbeddingsDrift` showing the same score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlgov.drift.embeddings import EmbeddingDriftResult, embedding_drift

DIMENSIONS = 64
CENTRES = np.random.default_rng(99).normal(scale=3.0, size=(6, DIMENSIONS))


def clusters(n: int, seed: int, *, shift: float = 0.0, new_share: float = 0.0) -> np.ndarray:
    """Embeddings of five classes (clusters); `shift` moves the first, `new_share` adds a sixth."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 5, n)
    points = CENTRES[kind] + rng.normal(size=(n, DIMENSIONS))
    points[kind == 0] += shift
    new = rng.random(n) < new_share
    points[new] = CENTRES[5] + rng.normal(size=(int(new.sum()), DIMENSIONS))
    return points


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return clusters(400, seed=1)


def test_bad_embeddings_are_refused_before_any_work() -> None:
    good = np.zeros((5, 3))
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        embedding_drift(np.zeros(5), good)
    with pytest.raises(ValueError, match="at least 2 rows"):
        embedding_drift(good, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        embedding_drift(good, np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="differ in width: reference 3, current 4"):
        embedding_drift(good, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="unknown embedding drift method 'pca'"):
        embedding_drift(good, good, method="pca")  # type: ignore[arg-type]


@pytest.mark.flow  # Evidently's import alone takes seconds
def test_same_distribution_is_not_drift_over_several_seeds(reference: np.ndarray) -> None:
    for seed in range(10, 16):
        result = embedding_drift(reference, clusters(200, seed))
        assert isinstance(result, EmbeddingDriftResult)
        assert result.method == "mmd" and result.threshold == pytest.approx(0.015)
        assert not result.drift_detected and result.score < result.threshold, seed
        assert (result.n_reference, result.n_current, result.dimensions) == (400, 200, 64)
        assert result.sample_rows is None


@pytest.mark.flow  # Evidently's import alone takes seconds
@pytest.mark.parametrize("method", ["mmd", "model"])  # ratio: too noisy on 200 rows of 64 dims
def test_a_moved_or_new_cluster_is_drift(reference: np.ndarray, method: str) -> None:
    moved = embedding_drift(reference, clusters(200, 8, shift=6.0), method=method)  # type: ignore[arg-type]
    new = embedding_drift(reference, clusters(200, 9, new_share=0.3), method=method)  # type: ignore[arg-type]
    same = embedding_drift(reference, clusters(200, 10), method=method)  # type: ignore[arg-type]
    assert moved.drift_detected and new.drift_detected and not same.drift_detected
    assert min(moved.score, new.score) > moved.threshold > same.score


@pytest.mark.flow  # Evidently's import alone takes seconds
def test_sampling_is_seeded_and_recorded(reference: np.ndarray) -> None:
    current = clusters(300, 11, new_share=0.3)
    first = embedding_drift(reference, current, max_rows=150, seed=3)
    again = embedding_drift(reference, current, max_rows=150, seed=3)
    other = embedding_drift(reference, current, max_rows=150, seed=4)
    assert first.sample_rows == 150 and (first.n_reference, first.n_current) == (400, 300)
    assert first.score == again.score != other.score
    assert first.drift_detected and other.drift_detected
    custom = embedding_drift(reference, current, method="distance", threshold=50.0)
    assert custom.threshold == 50.0 and not custom.drift_detected


@pytest.mark.flow  # Evidently's report fits a t-SNE picture: seconds
def test_html_report_is_evidentlys_embeddings_drift_with_the_same_score(
    reference: np.ndarray, tmp_path: Path
) -> None:
    current = clusters(80, 12, new_share=0.3)
    result = embedding_drift(reference[:80], current, html_path=tmp_path / "emb.html")
    html = (tmp_path / "emb.html").read_text(encoding="utf-8")
    assert "penultimate" in html and len(html) > 10_000
    assert result.html_path == str(tmp_path / "emb.html") and result.report_sample_rows == 80
    assert result.report_score == pytest.approx(result.score) and result.drift_detected
