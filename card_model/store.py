"""Persistence of card and PSAM images with atomic commits.

:class:`CardStore` keeps one image in one file.  :meth:`CardStore.commit`
writes the new JSON to a temporary file in the same directory, flushes and
fsyncs it, renames it over the image (``os.replace``, atomic on POSIX) and
fsyncs the directory, so a crash or kill at any instant leaves either the
old or the new image on disk, never a mix.  The card OS commits after each
state-changing command before it answers.

:class:`MemoryStore` is the in-memory variant for unit tests: it keeps the
serialised bytes of every commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from card_model.errors import ImageError
from card_model.image import CardImage
from card_model.psam_image import PsamImage

__all__ = ["CardStore", "ImageStore", "MemoryStore", "Storable", "atomic_write", "load_image_bytes"]


class Storable(Protocol):
    revision: int

    def to_json(self) -> bytes: ...


class ImageStore(Protocol):
    """What the card OS and the PSAM need: commit the current image."""

    def commit(self, image: Storable) -> None: ...


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    target = Path(path)
    directory = target.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_image_bytes(data: bytes) -> CardImage | PsamImage:
    """Parse image bytes of either kind (``"kind"``: ``card`` or ``psam``)."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ImageError("image", "syntax") from None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind == "card":
        return CardImage.from_dict(doc)
    if kind == "psam":
        return PsamImage.from_dict(doc)
    raise ImageError("image", "bad_format")


class CardStore:
    """One image file; ``commit`` is atomic and durable."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"CardStore({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def commit(self, image: Storable) -> None:
        atomic_write(self.path, image.to_json())

    def read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError:
            raise ImageError("image", "unreadable", self.path.name) from None

    def load(self) -> CardImage | PsamImage:
        return load_image_bytes(self.read_bytes())

    def load_card(self) -> CardImage:
        image = self.load()
        if not isinstance(image, CardImage):
            raise ImageError("image", "bad_format", "not a card image")
        return image

    def load_psam(self) -> PsamImage:
        image = self.load()
        if not isinstance(image, PsamImage):
            raise ImageError("image", "bad_format", "not a PSAM image")
        return image


class MemoryStore:
    """In-memory store for tests: keeps the bytes of each commit."""

    def __init__(self) -> None:
        self.commits: list[bytes] = []

    def commit(self, image: Storable) -> None:
        self.commits.append(image.to_json())

    @property
    def last(self) -> bytes | None:
        return self.commits[-1] if self.commits else None

    def load(self) -> CardImage | PsamImage:
        if not self.commits:
            raise ImageError("image", "missing")
        return load_image_bytes(self.commits[-1])
