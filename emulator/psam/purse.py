"""Wallet cryptograms of the virtual PSAM (docs/card-os.md §12).

After ``INIT FOR DESCRYPT 80 1A 00 KID 08 <factor>`` with the master of the
load key (LK), the purchase key (PK) or the TAC key (TK), ``CIPHER 80 FA P1
00`` computes with the card's diversified key, which never leaves the PSAM:

========  ==========  ====================================================  =================
P1        usage       data                                                  answer
========  ==========  ====================================================  =================
``20``    purchase    seed (8) || MAC1 input                                 MAC1 (4)
``21``    purchase    seed (8) || MAC2 (4) || MAC2 input                     9000 / 6300
``22``    load        seed (8) || MAC1 (4) || n (1) || MAC1 input (n) ||     MAC2 (4) / 6300
                      MAC2 input
``28``    tac         TAC (4) || TAC input                                   9000 / 6300
========  ==========  ====================================================  =================

A load MAC2 is given only when the card's MAC1 over the same session
verifies (6300 otherwise), so the PSAM never signs a load for a card that
did not prove itself; a TAC is only checked, never computed for the
terminal.  Data too short answers ``6700``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from card_model.keys import block_key
from card_model.psam_image import PsamKey
from card_model.purse import MAC_LENGTH, SEED_LENGTH, session_mac, tac_mac
from emulator.card_os.sw import SW_MISMATCH, SW_WRONG_LENGTH, CardStatus
from sm_crypto.diversify import diversify

__all__ = ["PURSE_CIPHERS", "PurseCipher"]

PurseCipher = Callable[[PsamKey, bytes, bytes], bytes]


def _card_key(master: PsamKey, factor: bytes) -> bytes:
    return diversify(block_key(master.algorithm, master.value), factor)


def _split_seed(data: bytes, minimum: int) -> tuple[bytes, bytes]:
    if len(data) < SEED_LENGTH + minimum:
        raise CardStatus(SW_WRONG_LENGTH)
    return data[:SEED_LENGTH], data[SEED_LENGTH:]


def purchase_mac1(master: PsamKey, factor: bytes, data: bytes) -> bytes:
    seed, message = _split_seed(data, 1)
    return session_mac(_card_key(master, factor), master.algorithm, seed, message)


def purchase_mac2_check(master: PsamKey, factor: bytes, data: bytes) -> bytes:
    seed, rest = _split_seed(data, MAC_LENGTH + 1)
    mac2, message = rest[:MAC_LENGTH], rest[MAC_LENGTH:]
    expected = session_mac(_card_key(master, factor), master.algorithm, seed, message)
    if not hmac.compare_digest(expected, mac2):
        raise CardStatus(SW_MISMATCH)
    return b""


def load_mac2(master: PsamKey, factor: bytes, data: bytes) -> bytes:
    seed, rest = _split_seed(data, MAC_LENGTH + 2)
    mac1, size = rest[:MAC_LENGTH], rest[MAC_LENGTH]
    mac1_input, mac2_input = rest[MAC_LENGTH + 1 : MAC_LENGTH + 1 + size], rest[MAC_LENGTH + 1 + size :]
    if not size or len(mac1_input) != size or not mac2_input:
        raise CardStatus(SW_WRONG_LENGTH)
    key = _card_key(master, factor)
    if not hmac.compare_digest(session_mac(key, master.algorithm, seed, mac1_input), mac1):
        raise CardStatus(SW_MISMATCH)
    return session_mac(key, master.algorithm, seed, mac2_input)


def verify_tac(master: PsamKey, factor: bytes, data: bytes) -> bytes:
    if len(data) < MAC_LENGTH + 1:
        raise CardStatus(SW_WRONG_LENGTH)
    tac, message = data[:MAC_LENGTH], data[MAC_LENGTH:]
    if not hmac.compare_digest(tac_mac(_card_key(master, factor), master.algorithm, message), tac):
        raise CardStatus(SW_MISMATCH)
    return b""


PURSE_CIPHERS: dict[str, PurseCipher] = {
    "purchase_mac1": purchase_mac1,
    "purchase_mac2_check": purchase_mac2_check,
    "load_mac2": load_mac2,
    "verify_tac": verify_tac,
}
