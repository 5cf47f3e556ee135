"""Child of the persistence crash test: commits a card image in a loop until killed.

    python cardos_crash_child.py IMAGE_PATH

Each round runs a state-changing command: a wrong VERIFY when the tries are
full, else the right one, so the tries alternate 3, 2, 3 ... and every odd
revision has 2 tries left.  The CardOS is backed by a CardStore, so every
answer follows an atomic commit.  Prints "ready" once, after the first commit.
"""

from __future__ import annotations

import sys

from card_model.store import CardStore
from emulator.card_os import CardOS


def main(path: str) -> None:
    store = CardStore(path)
    card = CardOS(store.load_card(), store=store)
    first = True
    while True:
        wrong = card.image.pin.tries_left == card.image.pin.try_limit
        card.process(bytes.fromhex("0020000103000000" if wrong else "0020000103211008"))
        if first:
            print("ready", flush=True)
            first = False


if __name__ == "__main__":
    main(sys.argv[1])
