"""Card state on disk: committed before the answer, atomic under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cardos_helpers import external_auth, make_card, sw_of

from card_model.demo import demo_card_image
from card_model.image import CardImage
from card_model.store import CardStore, MemoryStore
from emulator.card_os import CardOS

HERE = Path(__file__).parent


def test_state_change_is_on_disk_before_the_answer(tmp_path: Path) -> None:
    store = CardStore(tmp_path / "card.json")
    store.commit(demo_card_image())
    card = CardOS(store.load_card(), store=store)
    assert sw_of(card, "0020000103000000") == 0x63C2
    # a tear now (answer lost) still leaves the decremented counter on disk
    assert store.load_card().pin.tries_left == 2
    restarted = CardOS(store.load_card(), store=store)
    assert sw_of(restarted, "00200001") == 0x63C2


def test_reads_do_not_write(tmp_path: Path) -> None:
    store = MemoryStore()
    card = make_card(store=store)
    for apdu in ("00B2012D00", "80CADF0100", "0084000008", "00200001", "804A010041"):
        sw_of(card, apdu)
    assert external_auth(card) == 0x9000
    assert store.commits == []


def test_revision_grows_per_commit() -> None:
    store = MemoryStore()
    card = make_card(store=store)
    sw_of(card, "0020000103000000")
    sw_of(card, "0020000103211008")
    revisions = [CardImage.from_json(raw).revision for raw in store.commits]
    assert revisions == [1, 2]


def test_commit_failure_answers_6581(tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    store = CardStore(directory / "card.json")
    card = CardOS(demo_card_image(), store=store)
    directory.rmdir()
    assert sw_of(card, "0020000103000000") == 0x6581


def test_sigkill_during_commit_loop_leaves_old_or_new_image(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    CardStore(path).commit(demo_card_image())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    rng = random.Random(20250301)
    last_revision = 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, str(HERE / "cardos_crash_child.py"), str(path)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        image = CardStore(path).load_card()  # parses: never a torn file
        assert image.revision > last_revision
        assert image.pin.tries_left in (2, 3)
        assert image.pin.tries_left == (2 if image.revision % 2 else 3)
        last_revision = image.revision
