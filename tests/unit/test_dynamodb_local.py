"""DynamoDB Local's command line: fsync skipped only for a data folder, only when asked not to
keep it, and only with a library that is really installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.dynamodb_local import DynamoDBLocal, no_fsync_library


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    installed = tmp_path / "libeatmydata.so"
    installed.write_bytes(b"")
    monkeypatch.setattr(
        "local.dynamodb_local.NO_FSYNC_LIBRARIES", (str(tmp_path / "absent.so"), str(installed))
    )
    monkeypatch.delenv("DYNAMODB_LOCAL_FSYNC", raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    return str(installed)


def test_the_first_installed_library_is_the_one_used(library: str) -> None:
    assert no_fsync_library() == library


def test_none_is_used_when_none_is_installed(tmp_path: Path) -> None:
    assert no_fsync_library((str(tmp_path / "a.so"), str(tmp_path / "b.so"))) is None


def test_a_data_folder_is_served_without_fsync(library: str, tmp_path: Path) -> None:
    server = DynamoDBLocal(data_dir=tmp_path / "ddb")
    assert server.no_fsync() == library
    assert server.environment()["LD_PRELOAD"] == library


def test_an_existing_preload_is_kept(
    library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    env = DynamoDBLocal(data_dir=tmp_path / "ddb").environment()
    assert env["LD_PRELOAD"] == f"/opt/other.so {library}"


def test_in_memory_there_is_nothing_to_skip(library: str) -> None:
    server = DynamoDBLocal()
    assert server.no_fsync() is None
    assert "LD_PRELOAD" not in server.environment()


def test_dynamodb_local_fsync_1_keeps_the_syncs(
    library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_LOCAL_FSYNC", "1")
    server = DynamoDBLocal(data_dir=tmp_path / "ddb")
    assert server.no_fsync() is None
    assert "LD_PRELOAD" not in server.environment()
