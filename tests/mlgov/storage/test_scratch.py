"""A run's scratch folder goes when the run ends, failed or not, and never takes another's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgov.storage.scratch import run_scratch

pytestmark = pytest.mark.unit


def test_the_folder_and_its_empty_parents_go_when_the_run_ends(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with run_scratch(work, "churn", "run-1") as folder:
        assert folder == work / "churn" / "run-1" and folder.is_dir()
        (folder / "package").mkdir()
        (folder / "package" / "model.safetensors").write_bytes(b"weights")
    assert not work.exists() and tmp_path.is_dir()


def test_a_failing_run_leaves_nothing_and_its_error_goes_on(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="training broke"), run_scratch(work, "m", "r") as folder:
        (folder / "models").mkdir()
        (folder / "models" / "best-epoch.pth").write_bytes(b"partial")
        raise RuntimeError("training broke")
    assert not work.exists()


def test_another_runs_files_stay(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with run_scratch(work, "churn", "a") as first, run_scratch(work, "churn", "b") as second:
        (first / "x").write_text("a")
        (second / "x").write_text("b")
        with run_scratch(work, "monitoring", "c") as third:
            (third / "y").write_text("c")
        assert (second / "x").read_text() == "b" and not (work / "monitoring").exists()
    assert not work.exists()

    with run_scratch(work, "churn", "a") as folder:
        folder.joinpath("kept-by-a").write_text("a")
        with run_scratch(work, "churn", "b"):
            pass
        assert folder.joinpath("kept-by-a").is_file()  # b's clean-up kept a's folder and parent


def test_runs_without_a_run_id_get_their_own_folders(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with run_scratch(work, "m", None) as first, run_scratch(work, "m", None) as second:
        assert first != second and first.parent == second.parent == work / "m"
        assert first.name.startswith("local-") and first.is_dir() and second.is_dir()
    assert not work.exists()
