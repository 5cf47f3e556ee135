"""Child of the SIGKILL test: a terminal process in the middle of a card flow.

    python terminal_registry_crash_child.py REGISTRY_URL READER

Presents the card in READER through a presentation gate on the registry
(journal in the same database), then changes the PIN (the initial PIN from
the demo SSN, so no key source is needed).  The card in the parent stalls
on CHANGE PIN after executing it, and the parent kills this process there.
"""

from __future__ import annotations

import sys

from terminal import flows
from terminal.presentation import PresentationGate
from terminal.registry import Actor, open_registry
from terminal.session import CardSession

ACTOR = Actor(operator="op-crash", terminal="BJ-T-CRASH")


def main(url: str, reader: str) -> None:
    registry, journal = open_registry(url)
    gate = PresentationGate(registry, actor=ACTOR)
    session = CardSession.open(reader, journal=gate.journal_hook(journal), gate=gate)
    print("presented", flush=True)
    flows.change_pin(session, "211008", "135790", ssn="110102197305211008")
    print("changed", flush=True)  # never reached: killed while the card holds the answer


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
