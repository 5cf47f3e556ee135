"""Purse cryptograms (PBOC 3DES vectors, SM4), the purse / ticket / financial
codecs and profile tables, and money amounts."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest

from card_model.errors import ImageError, IssuanceError, ProfileError
from card_model.financial import application_record, luhn_digit, virtual_pan
from card_model.keys import Algorithm
from card_model.profile import load_profile, parse_profile
from card_model.purse import (
    LastTransaction,
    PurseState,
    TransactionRecord,
    load_mac1_data,
    load_mac2_data,
    load_seed,
    purchase_mac1_data,
    purchase_seed,
    session_mac,
    tac_mac,
)
from card_model.ticket import ParkTicket
from sm_crypto.block import Sm4Key, TdesKey
from sm_crypto.diversify import session_key
from terminal.flows.amounts import check_amount, format_fen, parse_amount
from terminal.flows.wallet_errors import InvalidAmount

VECTORS = tomllib.loads((Path(__file__).parent / "vectors" / "pboc_3des.toml").read_text(encoding="utf-8"))
PROFILE_FILE = Path(__file__).parents[2] / "card_model" / "data" / "profiles" / "gen3.toml"


def _hex(parts: list[str] | str) -> bytes:
    return bytes.fromhex("".join(parts) if isinstance(parts, list) else parts)


def test_pboc_3des_load_vector() -> None:
    v = VECTORS["load"]
    key = _hex(v["key"])
    seed = load_seed(_hex(v["random"]), v["online_counter"])
    assert session_key(TdesKey(key), seed[:4], seed[4:])[:8] == _hex(v["session_key"])
    assert session_mac(key, Algorithm.TDES, seed, _hex(v["mac1_data"])) == _hex(v["mac1"])
    assert session_mac(key, Algorithm.TDES, seed, _hex(v["mac2_data"])) == _hex(v["mac2"])
    # the message builders give the same layouts (type 01 in the published example)
    assert load_mac1_data(0, 0x1000, 0x01, bytes.fromhex("001122334455")) == _hex(v["mac1_data"])
    assert load_mac2_data(
        0x1000, 0x01, bytes.fromhex("001122334455"), bytes.fromhex("20111221"), bytes.fromhex("214822")
    ) == _hex(v["mac2_data"])


def test_pboc_3des_purchase_vector() -> None:
    v = VECTORS["purchase"]
    key = _hex(v["key"])
    seed = purchase_seed(_hex(v["random"]), v["offline_counter"], _hex(v["terminal_sequence"]))
    assert session_key(TdesKey(key), seed[:4], seed[4:])[:8] == _hex(v["session_key"])
    assert session_mac(key, Algorithm.TDES, seed, _hex(v["mac1_data"])) == _hex(v["mac1"])
    assert purchase_mac1_data(
        0x1000, 0x06, bytes.fromhex("001122334455"), bytes.fromhex("20120229"), bytes.fromhex("135100")
    ) == _hex(v["mac1_data"])


def test_sm4_session_mac_and_tac_definitions() -> None:
    key = bytes(range(16))
    seed = bytes.fromhex("0A0B0C0D00078000")
    session = Sm4Key(key).encrypt_ecb(seed + bytes(8))
    assert session_mac(key, Algorithm.SM4, seed, b"data") == Sm4Key(session).mac(b"data")
    assert tac_mac(key, Algorithm.SM4, b"data") == Sm4Key(key).mac(b"data")
    half = bytes(a ^ b for a, b in zip(key[:8], key[8:], strict=True))
    assert tac_mac(key, Algorithm.TDES, b"data") == TdesKey(half + half).mac(b"data")
    with pytest.raises(ValueError):
        session_mac(key, Algorithm.SM4, b"short", b"data")


def test_purse_state_and_record_codecs() -> None:
    state = PurseState(1234, 5, 6, LastTransaction(4, b"MAC2", b"TAC!"), None)
    again = PurseState.from_bytes(state.to_bytes())
    assert again == state and len(state.to_bytes()) == PurseState.SIZE
    with pytest.raises(ImageError):
        PurseState.from_bytes(b"\x00" * 3)
    record = TransactionRecord(
        7, 250, 0x06, bytes.fromhex("110102000001"), bytes.fromhex("20260301"), b"\x08\x15\x00"
    )
    assert TransactionRecord.from_bytes(record.to_bytes()) == record
    with pytest.raises(ValueError):
        TransactionRecord.from_bytes(b"\x00" * 22)
    with pytest.raises(ValueError):
        TransactionRecord.from_bytes(record.to_bytes()[:16] + b"\xaa" + record.to_bytes()[17:])


def test_park_ticket_codec() -> None:
    ticket = ParkTicket(
        2026, dt.date(2026, 1, 1), dt.date(2026, 12, 31), "1", "110102000001", dt.date(2026, 3, 1)
    )
    raw = ticket.to_bytes()
    assert len(raw) == 21 and raw[:2] == b"\x20\x26"
    assert ParkTicket.from_bytes(raw) == ticket
    assert ticket.valid_on(dt.date(2026, 6, 1)) and not ticket.valid_on(dt.date(2027, 1, 1))
    for bad in (raw[:20], raw[:2] + b"\x20\x26\x13\x01" + raw[6:], raw[:10] + b"\xff" + raw[11:]):
        with pytest.raises(ValueError):
            ParkTicket.from_bytes(bad)
    with pytest.raises(ValueError):
        ParkTicket(2026, dt.date(2026, 12, 31), dt.date(2026, 1, 1), "1", "110102000001", dt.date(2026, 3, 1))
    with pytest.raises(ValueError):
        ParkTicket(2026, dt.date(2026, 1, 1), dt.date(2026, 12, 31), "A", "110102000001", dt.date(2026, 3, 1))


def test_virtual_pan_and_application_record() -> None:
    pan = virtual_pan("BOB", bytes(16))
    assert len(pan) == 16 and pan.startswith("629113") and luhn_digit(pan[:-1]) == pan[-1]
    assert luhn_digit("7992739871") == "3"
    record = application_record(pan, dt.date(2025, 3, 1), dt.date(2035, 2, 28))
    assert bytes.fromhex(pan) in record and bytes.fromhex("350228") in record
    with pytest.raises(IssuanceError):
        virtual_pan("NOPE", bytes(16))


def test_profiles_declare_the_applications() -> None:
    gen3, gen2, gen1 = (load_profile(n).applications for n in ("gen3", "gen2", "gen1"))
    assert gen3.purse is not None and gen3.purse.balance_limit == 100_000 and gen3.purse.algorithm_id == 0x04
    assert gen2.purse is not None and gen2.purse.algorithm_id == 0x00
    assert gen1.purse is None and gen1.park_ticket is None and gen1.financial is not None
    assert gen3.park_ticket is not None and (gen3.park_ticket.file, gen3.park_ticket.sfi) == ("EF15", 21)


def _doc() -> dict[str, Any]:
    return tomllib.loads(PROFILE_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("table", "change", "where"),
    [
        ("purse", {"df_name": "ZZ"}, "purse.df_name"),
        ("purse", {"df_name": "0102"}, "purse.df_name"),
        ("purse", {"balance_limit": 0}, "purse.balance_limit"),
        ("purse", {"balance_limit": "x"}, "purse.balance_limit"),
        ("purse", {"type": "ed"}, "purse.type"),
        ("purse", {"state_fid": "EF05"}, "purse.state_fid"),
        ("purse", {"log_sfi": 5}, "purse.log_sfi"),
        ("purse", {"colour": "red"}, "purse"),
        ("financial", {"aid": "A0"}, "financial.aid"),
        ("financial", {"label": "中文"}, "financial.label"),
        ("financial", {"record_fid": "0E02"}, "financial.record_fid"),
        ("financial", {"priority": 0}, "financial.priority"),
        ("park_ticket", {"file": "EF0D"}, "park_ticket.file"),
        ("park_ticket", {"tag": "02"}, "park_ticket.tag"),
        ("park_ticket", {"tag": "XY"}, "park_ticket.tag"),
    ],
)
def test_profile_tables_are_validated(table: str, change: dict[str, Any], where: str) -> None:
    doc = copy.deepcopy(_doc())
    doc[table].update(change)
    with pytest.raises(ProfileError) as info:
        parse_profile(doc)
    assert where in str(info.value)


def test_purse_needs_its_keys_and_tables_are_optional() -> None:
    doc = copy.deepcopy(_doc())
    doc["key"] = [k for k in doc["key"] if k["role"] != "TK"]
    with pytest.raises(ProfileError) as info:
        parse_profile(doc)
    assert "TK" in str(info.value)
    bare = copy.deepcopy(_doc())
    for name in ("purse", "financial", "park_ticket"):
        del bare[name]
    applications = parse_profile(bare).applications
    assert (applications.purse, applications.financial, applications.park_ticket) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12", 1200), ("12.5", 1250), ("12.50", 1250), (" 0.01 ", 1), ("+3", 300), ("1000.00", 100000)],
)
def test_amounts_parse(text: str, fen: int) -> None:
    assert parse_amount(text) == fen
    assert parse_amount(format_fen(fen)) == fen


@pytest.mark.parametrize(
    ("text", "reason", "code"),
    [
        ("abc", "format", -41),
        ("", "format", -41),
        ("1.234", "format", -41),
        ("1,00", "format", -41),
        ("１２", "format", -41),
        ("0", "zero", -23),
        ("0.00", "zero", -23),
        ("-5", "negative", -23),
        ("-0.01", "negative", -23),
        ("42949672.96", "too_large", -23),
        ("9999999999999", "too_large", -23),
        (12, "format", -41),
    ],
)
def test_bad_amounts(text: object, reason: str, code: int) -> None:
    with pytest.raises(InvalidAmount) as info:
        parse_amount(text)
    assert info.value.reason == reason and info.value.national_code == code
    assert info.value.error_id == "invalid_amount"


def test_check_amount_in_fen() -> None:
    assert check_amount(1) == 1
    for bad, reason in (
        (0, "zero"),
        (-1, "negative"),
        (True, "format"),
        (1.5, "format"),
        (2**32, "too_large"),
    ):
        with pytest.raises(InvalidAmount) as info:
            check_amount(bad)
        assert info.value.reason == reason
    assert format_fen(5) == "0.05" and format_fen(-150) == "-1.50"
