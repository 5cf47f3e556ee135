"""Card host: several virtual cards on several vpcd slots in one process.

:class:`VirtualSlot` is one card in one vpcd slot: a card (card OS or
PSAM) wrapped in a :class:`emulator.faults.FaultyCard` and attached with a
:class:`emulator.vpcd.VpcdLink` (its own serving thread).  ``insert()`` /
``remove()`` put the card in and pull it out; ``arm_fault()`` arms a
one-shot fault.  :class:`CardHost` holds the slots of one process, is a
context manager that pulls every card on exit, and can serve the control
socket (:mod:`emulator.control`) that ``sscard emulator insert/remove/fault/
show`` talk to.

Persistence: a slot made from an image file runs a card OS that commits
every state change to the file atomically before it answers
(:class:`card_model.store.CardStore`), so killing the process at any point
leaves the old or the new state.  While a host runs an image it holds an
exclusive ``flock`` on ``.<image name>.lock`` beside it (released by the
kernel even on SIGKILL), so two hosts never run the same card; on taking
the lock it removes temporary files an interrupted commit left behind.

Cards without an image file (the built-in demo card and PSAM) live in
memory only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from card_model.demo import demo_card_image, demo_psam_image
from card_model.image import CardImage
from card_model.psam_image import PsamImage
from emulator.card_os import CardOS, Interface
from emulator.errors import ImageInUse, SlotInUse, SlotUnavailable, UnknownSlot
from emulator.faults import Fault, FaultEvent, FaultPlan, FaultyCard
from emulator.images import open_card
from emulator.psam import PsamCard
from emulator.summary import card_summary, image_summary, psam_summary
from emulator.vpcd import VirtualCard, VpcdConnectionError, VpcdLink, slot_port

__all__ = ["CardHost", "ImageLock", "VirtualSlot"]

log = logging.getLogger("sscard.emulator.runner")

CardKind = Literal["card", "psam", "other"]
_REINSERT_WAIT = 2.0


def _kind_of(card: VirtualCard) -> CardKind:
    if isinstance(card, CardOS):
        return "card"
    if isinstance(card, PsamCard):
        return "psam"
    return "other"


class ImageLock:
    """Exclusive advisory lock on ``.<name>.lock`` beside an image file."""

    def __init__(self, image_path: Path) -> None:
        self.image_path = image_path
        self.path = image_path.with_name(f".{image_path.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ImageInUse(self.image_path.name) from None
        self._fd = fd
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temp files of commits a killed process never finished (the image
        itself is complete: the rename is the commit)."""
        for leftover in self.image_path.parent.glob(f".{self.image_path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                log.info("removed %s left by an interrupted commit", leftover.name)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class VirtualSlot:
    """One virtual card in one vpcd slot (see the module docstring)."""

    def __init__(
        self,
        slot: int,
        card: VirtualCard,
        *,
        image_path: Path | None = None,
        vpcd_host: str = "127.0.0.1",
    ) -> None:
        slot_port(slot)
        self.slot = slot
        self.card = card
        self.image_path = image_path
        self.plan = FaultPlan()
        self._cancel = threading.Event()
        self._state_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.faulty = FaultyCard(card, self.plan, cancel=self._cancel, on_tear=self._torn)
        self.link = VpcdLink(self.faulty, slot, vpcd_host)

    def __repr__(self) -> str:
        return f"VirtualSlot({self.slot}, {self.kind}, inserted={self.inserted})"

    # -- properties -------------------------------------------------------------------------------

    @property
    def kind(self) -> CardKind:
        return _kind_of(self.card)

    @property
    def interface(self) -> Interface:
        if isinstance(self.card, CardOS):
            return self.card.interface
        return "contact"

    @property
    def inserted(self) -> bool:
        return self.link.inserted

    @property
    def atr(self) -> bytes:
        return self.card.atr()

    @property
    def apdu_count(self) -> int:
        return self.plan.apdu_count

    @property
    def fired(self) -> list[FaultEvent]:
        return self.plan.fired

    @property
    def armed(self) -> list[Fault]:
        return self.plan.armed

    # -- insert / remove ---------------------------------------------------------------------------

    def insert(self, timeout: float = 10.0) -> None:
        """Put the card in the reader (connect to vpcd); no-op when inserted."""
        with self._state_lock:
            self._cancel_timer()
            self._cancel.clear()
            try:
                self.link.insert(timeout=timeout)
            except VpcdConnectionError:
                raise SlotUnavailable(f"slot {self.slot}", detail_zh=f"槽位 {self.slot}") from None

    def remove(self) -> None:
        """Pull the card out (close the vpcd connection); its session ends.
        Ends a fault wait at once; no-op when already out."""
        with self._state_lock:
            self._cancel_timer()
            self._cancel.set()
            self.link.remove()
            self.faulty.power_off()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _torn(self, fault: Fault) -> None:
        """Called in the serving thread when a fault pulls the card."""
        self.card.power_off()
        delay = fault.param("reinsert_after")
        if delay is None or self._cancel.is_set():
            return
        timer = threading.Timer(float(delay), self._reinsert)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _reinsert(self) -> None:
        deadline = time.monotonic() + _REINSERT_WAIT
        while self.link.inserted and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._cancel.is_set():
            return
        try:
            self.insert()
        except SlotUnavailable:
            log.warning("slot %d: card could not be put back after a fault", self.slot)

    # -- faults ------------------------------------------------------------------------------------

    def arm_fault(self, fault: Fault) -> Fault:
        """Arm a one-shot fault; returns it as armed (``between`` resolved)."""
        return self.plan.arm(fault)

    def clear_faults(self) -> None:
        self.plan.clear()

    # -- state -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "kind": self.kind,
            "interface": self.interface,
            "inserted": self.inserted,
            "atr": self.atr.hex().upper(),
            "image": None if self.image_path is None else str(self.image_path),
            "apdu_count": self.apdu_count,
            "armed": [fault.to_mapping() for fault in self.armed],
            "fired": [event.to_mapping() for event in self.fired],
        }

    def summary(self) -> dict[str, Any]:
        """The card's state (:mod:`emulator.summary`): from the image file
        when there is one (it always holds the committed state)."""
        if self.image_path is not None:
            return image_summary(self.image_path)
        image = getattr(self.card, "image", None)
        if isinstance(image, CardImage):
            return card_summary(image.copy())
        if isinstance(image, PsamImage):
            return psam_summary(image)
        return {"kind": "other", "atr": self.atr.hex().upper()}


class CardHost:
    """The virtual cards of one process, by slot."""

    def __init__(self, *, vpcd_host: str = "127.0.0.1") -> None:
        self.vpcd_host = vpcd_host
        self._slots: dict[int, VirtualSlot] = {}
        self._locks: dict[int, ImageLock] = {}
        self._lock = threading.RLock()
        self._control: Any = None

    def __repr__(self) -> str:
        return f"CardHost(slots={sorted(self._slots)})"

    def __enter__(self) -> CardHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- slots -------------------------------------------------------------------------------------

    def add(
        self,
        slot: int,
        card: VirtualCard | None = None,
        *,
        image: str | os.PathLike[str] | None = None,
        interface: Interface = "contact",
        generation: int = 3,
        psam: bool = False,
        insert: bool = True,
    ) -> VirtualSlot:
        """Put a card on ``slot``: ``card`` as given, or the card of the image
        file ``image`` (persistent), or the demo PSAM (``psam``), or else an
        in-memory demo card of ``generation``.  Inserted unless ``insert``
        is False."""
        with self._lock:
            if slot in self._slots:
                raise SlotInUse(f"slot {slot}", detail_zh=f"槽位 {slot}")
            lock: ImageLock | None = None
            path: Path | None = None
            if card is None and image is not None:
                path = Path(image).resolve()
                lock = ImageLock(path)
                lock.acquire()
                try:
                    card = open_card(path, interface=interface)
                except BaseException:
                    lock.release()
                    raise
            elif card is None and psam:
                card = PsamCard(demo_psam_image())
            elif card is None:
                card = CardOS(demo_card_image(generation), interface=interface)
            virtual = VirtualSlot(slot, card, image_path=path, vpcd_host=self.vpcd_host)
            self._slots[slot] = virtual
            if lock is not None:
                self._locks[slot] = lock
        if insert:
            try:
                virtual.insert()
            except BaseException:
                self.discard(slot)
                raise
        return virtual

    def slot(self, slot: int) -> VirtualSlot:
        with self._lock:
            virtual = self._slots.get(slot)
        if virtual is None:
            raise UnknownSlot(f"slot {slot}", detail_zh=f"槽位 {slot}")
        return virtual

    @property
    def slots(self) -> dict[int, VirtualSlot]:
        with self._lock:
            return dict(self._slots)

    def insert(self, slot: int, timeout: float = 10.0) -> None:
        self.slot(slot).insert(timeout)

    def remove(self, slot: int) -> None:
        self.slot(slot).remove()

    def arm_fault(self, slot: int, fault: Fault) -> Fault:
        return self.slot(slot).arm_fault(fault)

    def clear_faults(self, slot: int) -> None:
        self.slot(slot).clear_faults()

    def discard(self, slot: int) -> None:
        """Pull the card of ``slot`` and forget it (its image lock is released)."""
        with self._lock:
            virtual = self._slots.pop(slot, None)
            lock = self._locks.pop(slot, None)
        if virtual is not None:
            virtual.remove()
        if lock is not None:
            lock.release()

    def status(self) -> list[dict[str, Any]]:
        return [virtual.status() for _, virtual in sorted(self.slots.items())]

    # -- control socket ------------------------------------------------------------------------------

    def serve_control(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Serve the control socket (:mod:`emulator.control`); returns its path."""
        from emulator.control import ControlServer

        with self._lock:
            if self._control is None:
                self._control = ControlServer(self, directory)
                self._control.start()
            path: Path = self._control.path
        return path

    @property
    def control_path(self) -> Path | None:
        return None if self._control is None else Path(self._control.path)

    def close(self) -> None:
        """Stop the control socket and pull every card."""
        control, self._control = self._control, None
        if control is not None:
            control.stop()
        for slot in list(self.slots):
            self.discard(slot)
