"""CardStore / MemoryStore and the atomic write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from card_model.demo import demo_card_image, demo_psam_image
from card_model.errors import ImageError
from card_model.store import CardStore, MemoryStore, atomic_write, load_image_bytes


def test_commit_and_load(tmp_path: Path) -> None:
    store = CardStore(tmp_path / "card.json")
    assert not store.exists()
    image = demo_card_image()
    store.commit(image)
    assert (tmp_path / "card.json").stat().st_mode & 0o777 == 0o600
    assert store.load_card() == image
    assert os.listdir(tmp_path) == ["card.json"]  # no temporary file left
    with pytest.raises(ImageError):
        store.load_psam()


def test_psam_in_store(tmp_path: Path) -> None:
    store = CardStore(tmp_path / "psam.json")
    store.commit(demo_psam_image())
    assert store.load_psam().terminal_number_text == "110102000001"
    with pytest.raises(ImageError):
        store.load_card()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        CardStore(tmp_path / "none.json").load()
    (tmp_path / "bad.json").write_bytes(b'{"kind": "toaster"}')
    with pytest.raises(ImageError):
        CardStore(tmp_path / "bad.json").load()
    with pytest.raises(ImageError):
        load_image_bytes(b"{")


def test_atomic_write_failure_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    atomic_write(path, b"old")

    def failing_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("card_model.store.os.replace", failing_replace)
    with pytest.raises(OSError):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]  # the temporary file was removed


def test_memory_store() -> None:
    store = MemoryStore()
    assert store.last is None
    with pytest.raises(ImageError):
        store.load()
    store.commit(demo_card_image())
    assert store.load() == demo_card_image()
