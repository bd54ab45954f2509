"""`healthscore.files.atomic_write`: the whole new file or the old one, never half."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from healthscore.files import atomic_write


def test_writes_text_as_utf8_and_bytes_as_is(tmp_path: Path) -> None:
    text = tmp_path / "deep" / "er" / "page.html"  # parent folders are created
    assert atomic_write(text, "🟩 Healthy — ok") == text
    assert text.read_bytes() == "🟩 Healthy — ok".encode()
    blob = tmp_path / "blob.bin"
    atomic_write(blob, b"\x00\xff")
    assert blob.read_bytes() == b"\x00\xff"
    assert stat.S_IMODE(os.stat(text).st_mode) == 0o644  # not the temp file's 0600
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blob.bin", "deep", "er", "page.html"]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text("old", encoding="utf-8")
    atomic_write(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["crm.json"]


def test_a_failed_rename_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    # A real failure after the bytes are written: the target is a non-empty folder,
    # which rename(2) cannot replace with a file.
    target = tmp_path / "dashboard.html"
    target.mkdir()
    (target / "keep.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(OSError):
        atomic_write(target, "x" * 100_000)
    assert (target / "keep.txt").read_text(encoding="utf-8") == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["dashboard.html"]
