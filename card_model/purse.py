"""The transport wallet: a PBOC-style electronic purse (EP) on the card.

Shared by the virtual card OS (``emulator.card_os.purse``), the PSAM
(``emulator.psam.purse``) and the terminal's key sources and flows, so that
every side builds the same messages (docs/card-os.md §12, docs/wallet.md):

* :class:`PurseSpec`: the purse as declared in a card profile (``[purse]``);
* :class:`PurseState`: balance, counters and the proof of the last load and
  purchase, stored in the card image as a binary file (the purse's EEPROM);
* :class:`TransactionRecord`: one 23-byte record of the cyclic transaction
  file (PBOC layout);
* seeds and MAC / TAC inputs of load and purchase, and the session-key MAC
  and TAC computations (SM4 or 3DES, from the per-card key bytes).

Amounts and balances are unsigned 4-byte integers in fen (分).  The
session key is :func:`sm_crypto.diversify.session_key` of the card's load /
purchase key over the 8-byte seed (``random || counter || 8000`` for a
load, ``random || counter || terminal sequence (low 2 bytes)`` for a
purchase): SM4 ``E(K, seed || 00*8)``, 3DES ``E(K, seed)`` as a single-DES
key.  MACs are the CBC-MAC with ``80 00..`` padding and a zero IV, first 4
bytes.  The TAC key is the card's TAC key itself for SM4 and, for 3DES,
its left half XOR its right half (single DES), as PBOC does.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from card_model.errors import ImageError, ProfileError
from card_model.keys import Algorithm, block_key
from sm_crypto.block import TdesKey
from sm_crypto.diversify import session_key

__all__ = [
    "BCD_DATE_LENGTH",
    "BCD_TIME_LENGTH",
    "MAC_LENGTH",
    "PURSE_TYPE_EP",
    "RECORD_LENGTH",
    "SEED_LENGTH",
    "TERMINAL_LENGTH",
    "TYPE_LOAD",
    "TYPE_PURCHASE",
    "LastTransaction",
    "PurseSpec",
    "PurseState",
    "TransactionRecord",
    "load_mac1_data",
    "load_mac2_data",
    "load_seed",
    "load_tac_data",
    "parse_purse",
    "purchase_mac1_data",
    "purchase_mac2_data",
    "purchase_seed",
    "purchase_tac_data",
    "session_mac",
    "tac_mac",
]

PURSE_TYPE_EP = 0x02
TYPE_LOAD = 0x02
TYPE_PURCHASE = 0x06
MAC_LENGTH = 4
SEED_LENGTH = 8
TERMINAL_LENGTH = 6
BCD_DATE_LENGTH = 4
BCD_TIME_LENGTH = 3
RECORD_LENGTH = 23
AMOUNT_MAX = 0xFFFFFFFF
COUNTER_MAX = 0xFFFF
LOAD_SEED_TAIL = b"\x80\x00"
_PURSE_TYPES = {"ep": PURSE_TYPE_EP}
_KEYS = frozenset(
    {
        "label",
        "df_name",
        "type",
        "key_index",
        "balance_limit",
        "log_records",
        "log_sfi",
        "state_fid",
        "log_fid",
        "algorithm_id",
    }
)


# -- the purse in the profile ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurseSpec:
    """``[purse]`` of a card profile (docs/card-os.md §12).

    ``purse_type``: P2 of the purse commands (02 electronic purse);
    ``key_index``: the key index INITIALIZE accepts; ``balance_limit``: the
    largest balance in fen; ``log_records``: records kept by the cyclic
    transaction file (SFI ``log_sfi``); ``state_fid`` / ``log_fid``: where
    the card image keeps the purse state and the records (internal files,
    not addressable from the social security application);
    ``algorithm_id``: the algorithm identifier INITIALIZE answers.
    """

    label: str
    df_name: bytes
    purse_type: int
    key_index: int
    balance_limit: int
    log_records: int
    log_sfi: int
    state_fid: int
    log_fid: int
    algorithm_id: int


def _fail(reason: str, where: str) -> ProfileError:
    return ProfileError("profile", reason, where)


def _int(table: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = table.get(key)
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise _fail("not_hex", f"purse.{key}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("wrong_type" if key in table else "missing", f"purse.{key}")
    if not low <= value <= high:
        raise _fail("wrong_length", f"purse.{key}")
    return value


def parse_purse(table: object, *, used_fids: frozenset[int], used_sfis: frozenset[int]) -> PurseSpec:
    """Validate ``[purse]`` (``used_fids`` / ``used_sfis``: those of the profile's files)."""
    if not isinstance(table, dict):
        raise _fail("not_a_table", "purse")
    unknown = set(table) - _KEYS
    if unknown:
        raise _fail("unexpected", f"purse: {', '.join(sorted(unknown))}")
    label = table.get("label", "")
    if not isinstance(label, str):
        raise _fail("wrong_type", "purse.label")
    df_text = table.get("df_name")
    if not isinstance(df_text, str):
        raise _fail("missing", "purse.df_name")
    try:
        df_name = bytes.fromhex(df_text)
    except ValueError:
        raise _fail("not_hex", "purse.df_name") from None
    if not 5 <= len(df_name) <= 16:
        raise _fail("wrong_length", "purse.df_name")
    purse_type = _PURSE_TYPES.get(str(table.get("type", "ep")))
    if purse_type is None:
        raise _fail("unknown_code", "purse.type")
    spec = PurseSpec(
        label=label,
        df_name=df_name,
        purse_type=purse_type,
        key_index=_int(table, "key_index", 1, 0xFF),
        balance_limit=_int(table, "balance_limit", 1, 0x7FFFFFFF),
        log_records=_int(table, "log_records", 1, 30),
        log_sfi=_int(table, "log_sfi", 1, 30),
        state_fid=_int(table, "state_fid", 1, 0xFFFE),
        log_fid=_int(table, "log_fid", 1, 0xFFFE),
        algorithm_id=_int(table, "algorithm_id", 0, 0xFF),
    )
    if spec.state_fid == spec.log_fid or {spec.state_fid, spec.log_fid} & used_fids:
        raise _fail("inconsistent", "purse.state_fid/log_fid: must differ from every file")
    if spec.log_sfi in used_sfis:
        raise _fail("inconsistent", "purse.log_sfi: used by a file of the social security application")
    return spec


# -- the purse's persistent state ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LastTransaction:
    """What GET TRANSACTION PROVE answers for the last load or purchase."""

    counter: int
    mac: bytes
    tac: bytes


_STATE = struct.Struct(">IHH?H4s4s?H4s4s")


@dataclass(slots=True)
class PurseState:
    """Balance (fen), online (load) and offline (purchase) transaction
    counters, and the last load / purchase with its MAC and TAC."""

    balance: int = 0
    online_counter: int = 0
    offline_counter: int = 0
    last_load: LastTransaction | None = None
    last_purchase: LastTransaction | None = None

    SIZE = _STATE.size

    def to_bytes(self) -> bytes:
        def part(last: LastTransaction | None) -> tuple[bool, int, bytes, bytes]:
            if last is None:
                return False, 0, bytes(MAC_LENGTH), bytes(MAC_LENGTH)
            return True, last.counter, last.mac, last.tac

        return _STATE.pack(
            self.balance,
            self.online_counter,
            self.offline_counter,
            *part(self.last_load),
            *part(self.last_purchase),
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> PurseState:
        if len(raw) != _STATE.size:
            raise ImageError("image", "inconsistent", "purse state")
        (
            balance,
            online,
            offline,
            has_load,
            load_ctr,
            load_mac,
            load_tac,
            has_purchase,
            purchase_ctr,
            purchase_mac,
            purchase_tac,
        ) = _STATE.unpack(raw)
        return cls(
            balance,
            online,
            offline,
            LastTransaction(load_ctr, load_mac, load_tac) if has_load else None,
            LastTransaction(purchase_ctr, purchase_mac, purchase_tac) if has_purchase else None,
        )


# -- transaction records ---------------------------------------------------------------------


def _bcd_ok(raw: bytes) -> bool:
    return all((b >> 4) <= 9 and (b & 0x0F) <= 9 for b in raw)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """One record of the transaction file: counter (2), overdraft limit (3),
    amount (4), type (1), terminal (6 BCD), date (4 BCD) and time (3 BCD)."""

    counter: int
    amount: int
    tx_type: int
    terminal: bytes
    date: bytes
    time: bytes
    overdraft: int = 0

    def to_bytes(self) -> bytes:
        return (
            self.counter.to_bytes(2, "big")
            + self.overdraft.to_bytes(3, "big")
            + self.amount.to_bytes(4, "big")
            + bytes((self.tx_type,))
            + self.terminal
            + self.date
            + self.time
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> TransactionRecord:
        """Decode a record (``ValueError`` for a wrong length or non-BCD fields)."""
        if len(raw) != RECORD_LENGTH:
            raise ValueError("a transaction record is 23 bytes")
        terminal, date, time = raw[10:16], raw[16:20], raw[20:23]
        if not (_bcd_ok(terminal) and _bcd_ok(date) and _bcd_ok(time)):
            raise ValueError("terminal, date and time of a transaction record are BCD")
        return cls(
            counter=int.from_bytes(raw[0:2], "big"),
            overdraft=int.from_bytes(raw[2:5], "big"),
            amount=int.from_bytes(raw[5:9], "big"),
            tx_type=raw[9],
            terminal=terminal,
            date=date,
            time=time,
        )


# -- messages ---------------------------------------------------------------------------------


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def load_seed(random: bytes, online_counter: int) -> bytes:
    """Session-key seed of a load: ``random(4) || online counter(2) || 8000``."""
    return random + online_counter.to_bytes(2, "big") + LOAD_SEED_TAIL


def purchase_seed(random: bytes, offline_counter: int, terminal_sequence: bytes) -> bytes:
    """Session-key seed of a purchase: ``random(4) || offline counter(2) ||``
    the low 2 bytes of the terminal transaction sequence number."""
    return random + offline_counter.to_bytes(2, "big") + terminal_sequence[-2:]


def load_mac1_data(old_balance: int, amount: int, tx_type: int, terminal: bytes) -> bytes:
    return _u32(old_balance) + _u32(amount) + bytes((tx_type,)) + terminal


def load_mac2_data(amount: int, tx_type: int, terminal: bytes, date: bytes, time: bytes) -> bytes:
    return _u32(amount) + bytes((tx_type,)) + terminal + date + time


def load_tac_data(
    new_balance: int,
    online_counter: int,
    amount: int,
    tx_type: int,
    terminal: bytes,
    date: bytes,
    time: bytes,
) -> bytes:
    return (
        _u32(new_balance)
        + online_counter.to_bytes(2, "big")
        + _u32(amount)
        + bytes((tx_type,))
        + terminal
        + date
        + time
    )


def purchase_mac1_data(amount: int, tx_type: int, terminal: bytes, date: bytes, time: bytes) -> bytes:
    return _u32(amount) + bytes((tx_type,)) + terminal + date + time


def purchase_mac2_data(amount: int) -> bytes:
    return _u32(amount)


def purchase_tac_data(
    amount: int, tx_type: int, terminal: bytes, terminal_sequence: bytes, date: bytes, time: bytes
) -> bytes:
    return _u32(amount) + bytes((tx_type,)) + terminal + terminal_sequence + date + time


# -- cryptograms ------------------------------------------------------------------------------


def session_mac(card_key: bytes, algorithm: Algorithm, seed: bytes, data: bytes) -> bytes:
    """4-byte MAC of ``data`` with the session key of ``card_key`` (load or
    purchase key bytes) over ``seed`` (8 bytes)."""
    if len(seed) != SEED_LENGTH:
        raise ValueError("a purse session-key seed is 8 bytes")
    key = block_key(algorithm, card_key)
    session = block_key(algorithm, session_key(key, seed[:4], seed[4:]))
    return session.mac(data)[:MAC_LENGTH]


def tac_mac(card_key: bytes, algorithm: Algorithm, data: bytes) -> bytes:
    """4-byte TAC of ``data`` with the card's TAC key bytes ``card_key``."""
    if algorithm is Algorithm.TDES:
        half = bytes(a ^ b for a, b in zip(card_key[:8], card_key[8:16], strict=True))
        return TdesKey(half + half).mac(data)[:MAC_LENGTH]
    return block_key(algorithm, card_key).mac(data)[:MAC_LENGTH]
