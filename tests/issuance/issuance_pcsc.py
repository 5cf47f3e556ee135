"""PC/SC helpers of the issuance tests: reader state polling, cards in vpcd slots.

Slots of this area (tests/conftest.py SLOT_RANGES["issuance"]): 0 the card
under issuance, 1 the PSAM, 2 a second card (the old card of a replacement).
"""

from __future__ import annotations

from emulator.presence import inserted as inserted
from emulator.presence import wait_for_card as wait_for_card

CARD_SLOT = 0
PSAM_SLOT = 1
OLD_CARD_SLOT = 2
AREA_SLOTS = (CARD_SLOT, PSAM_SLOT, OLD_CARD_SLOT)
