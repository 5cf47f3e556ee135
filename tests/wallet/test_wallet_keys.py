"""Wallet cryptograms of the PSAM and of the key sources: every source gives
the same answers, keys never leave them, refusals map to national codes."""

from __future__ import annotations

import warnings

import pytest
from wallet_helpers import psam_source

from apdu.errors import InvalidInput, KeySourceError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_key_set, demo_psam_image
from card_model.keys import Algorithm, IssuerKeySet, KeyRole
from card_model.psam_image import PsamImage
from card_model.purse import load_seed, purchase_seed, session_mac, tac_mac
from emulator.psam import PsamCard
from terminal.keysource import DevKeyFileKeySource, HsmKeySource, PsamKeySource, SoftwareHsm
from terminal.keysource.purse import (
    HsmPurseKeys,
    LocalPurseKeys,
    PurseKeys,
    purse_answer,
    purse_keys,
)

FACTOR = bytes.fromhex("0102030405060708")
SEED = load_seed(bytes.fromhex("A1B2C3D4"), 3)
PSEED = purchase_seed(bytes.fromhex("A1B2C3D4"), 3, bytes.fromhex("00000102"))
M1 = b"mac1 input data"
M2 = b"mac2 input data!"


def _card_key(role: KeyRole, algorithm: Algorithm = Algorithm.SM4) -> bytes:
    return demo_key_set().card_key(algorithm, role, FACTOR)


def dev_source() -> DevKeyFileKeySource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DevKeyFileKeySource(demo_key_set())


def _sources() -> list[PurseKeys]:
    return [
        purse_keys(psam_source()),
        purse_keys(HsmKeySource(SoftwareHsm(demo_key_set()))),
        purse_keys(dev_source()),
        LocalPurseKeys(demo_key_set()),
    ]


@pytest.mark.parametrize("algorithm", [Algorithm.SM4, Algorithm.TDES])
def test_every_source_gives_the_same_cryptograms(algorithm: Algorithm) -> None:
    lk, pk, tk = (_card_key(r, algorithm) for r in (KeyRole.LK, KeyRole.PK, KeyRole.TK))
    mac1 = session_mac(lk, algorithm, SEED, M1)
    mac2 = session_mac(lk, algorithm, SEED, M2)
    pmac1 = session_mac(pk, algorithm, PSEED, M1)
    pmac2 = session_mac(pk, algorithm, PSEED, M2)
    tac = tac_mac(tk, algorithm, M2)
    for keys in _sources():
        assert keys.load_mac2(algorithm, FACTOR, SEED, M1, mac1, M2) == mac2, keys
        assert keys.load_mac2(algorithm, FACTOR, SEED, M1, bytes(4), M2) is None, keys
        assert keys.purchase_mac1(algorithm, FACTOR, PSEED, M1) == pmac1, keys
        assert keys.check_purchase_mac2(algorithm, FACTOR, PSEED, M2, pmac2) is True
        assert keys.check_purchase_mac2(algorithm, FACTOR, PSEED, M2, bytes(4)) is False
        assert keys.check_tac(algorithm, FACTOR, M2, tac) is True
        assert keys.check_tac(algorithm, FACTOR, M2, bytes(4)) is False
        assert not any(k.hex() in repr(keys).lower() for k in (lk, pk, tk))


def test_bad_lengths_are_invalid_input() -> None:
    for keys in _sources():
        with pytest.raises(InvalidInput):
            keys.purchase_mac1(Algorithm.SM4, FACTOR, b"short", M1)
        with pytest.raises(InvalidInput):
            keys.check_tac(Algorithm.SM4, FACTOR, M2, b"\x00")
        with pytest.raises(InvalidInput):
            keys.load_mac2(Algorithm.SM4, b"\x01", SEED, M1, bytes(4), M2)


def _psam(image: PsamImage) -> PsamKeySource:
    return PsamKeySource(InProcessTransport(PsamCard(image), reader="In-process PSAM"))


def test_psam_key_usages_and_missing_keys() -> None:
    source = psam_source()
    # the purse keys serve no other PSAM usage, and other keys no purse usage
    with pytest.raises(KeySourceError) as mac:
        source.mac(KeyRole.LK, Algorithm.SM4, FACTOR, bytes(16), b"x")
    assert mac.value.national_code == -24 and mac.value.sw == 0x6985
    swapped = PsamImage.from_key_set(
        demo_key_set(), "110102000001", usage={KeyRole.PK: ["load"], KeyRole.LK: ["purchase"]}
    )
    keys = purse_keys(_psam(swapped))
    with pytest.raises(KeySourceError) as level:
        keys.purchase_mac1(Algorithm.SM4, FACTOR, PSEED, M1)
    assert level.value.national_code == -24
    sm4_only = IssuerKeySet({k: v for k, v in demo_key_set().masters.items() if k[0] is Algorithm.SM4})
    keys = purse_keys(_psam(PsamImage.from_key_set(sm4_only, "110102000001")))
    with pytest.raises(KeySourceError) as tdes:
        keys.check_tac(Algorithm.TDES, FACTOR, M2, bytes(4))
    assert tdes.value.national_code == -2202
    no_tk = IssuerKeySet({k: v for k, v in demo_key_set().masters.items() if k[1] is not KeyRole.TK})
    keys = purse_keys(_psam(PsamImage.from_key_set(no_tk, "110102000001")))
    with pytest.raises(KeySourceError) as missing:
        keys.check_tac(Algorithm.SM4, FACTOR, M2, bytes(4))
    assert missing.value.national_code == -24


def test_psam_cipher_commands_directly() -> None:
    psam = PsamCard(demo_psam_image())
    psam.power_on()

    def send(hexa: str) -> tuple[bytes, int]:
        answer = psam.process(bytes.fromhex(hexa.replace(" ", "")))
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    assert send("80FA200005 0000000000")[1] == 0x6985  # not selected
    assert send("00A4040009 A00000000386980701 00")[1] == 0x9000
    assert send("80FA200005 0000000000")[1] == 0x6985  # no INIT FOR DESCRYPT
    assert send("801A000808" + FACTOR.hex())[1] == 0x9000  # PK
    assert send("80FA200004 00000000")[1] == 0x6700
    mac1, status = send("80FA2000" + f"{len(PSEED) + len(M1):02X}" + (PSEED + M1).hex() + "00")
    assert status == 0x9000 and mac1 == session_mac(_card_key(KeyRole.PK), Algorithm.SM4, PSEED, M1)
    assert send("80FA2200" + f"{8 + 4 + 1 + 1 + 1:02X}" + (SEED + bytes(4) + b"\x01ab").hex())[1] == 0x6985
    assert send("80FA2100" + f"{8 + 4 + len(M2):02X}" + (PSEED + bytes(4) + M2).hex())[1] == 0x6300
    assert send("801A000708" + FACTOR.hex())[1] == 0x9000  # LK
    assert send("80FA2200" + f"{8 + 4 + 1 + 2:02X}" + (SEED + bytes(4) + b"\x05" + b"ab").hex())[1] == 0x6700
    assert send("80FA2800 05 0000000000")[1] == 0x6985  # LK has no tac usage
    assert send("801A000908" + FACTOR.hex())[1] == 0x9000  # TK
    assert send("80FA2800 03 000000")[1] == 0x6700
    assert (
        send("80FA2000" + f"{len(PSEED) + 1:02X}" + (PSEED + b"x").hex())[1] == 0x6985
    )  # TK cannot make MACs


def test_hsm_wallet_texts_and_refusals() -> None:
    local = LocalPurseKeys(demo_key_set())
    pk = "0008"
    good = f"03|{pk}|{FACTOR.hex().upper()}|{PSEED.hex().upper()}|{M1.hex().upper()}|"
    answer = purse_answer(local, good)
    assert answer == session_mac(_card_key(KeyRole.PK), Algorithm.SM4, PSEED, M1).hex().upper() + "|"
    assert (
        purse_answer(local, "03|0003|" + FACTOR.hex() + "|" + "00" * 8 + "|") is None
    )  # RK: not a wallet text
    assert purse_answer(local, "no bars") is None
    assert purse_answer(local, "09|0008|00|00|") is None  # unknown flag: left to the generic parser
    assert purse_answer(local, f"03|{pk}|ZZ|{PSEED.hex()}|00|") == "-41|"
    assert purse_answer(local, f"03|{pk}|{FACTOR.hex()}|{PSEED.hex()}|00|00|00|00|") == "-14|"
    assert purse_answer(local, f"03|{pk}|{FACTOR.hex()}|0011|00|") == "-42|"
    tac = f"03|0009|{FACTOR.hex()}|{M2.hex()}|00000000|"
    assert purse_answer(local, tac) == "-15|"
    hsm = SoftwareHsm(demo_key_set())
    assert hsm.process(good) == answer
    assert hsm.process("03|0007|" + FACTOR.hex() + "|" + "00" * 16 + "|00|") == "-14|"
    assert hsm.process("03|0007|" + FACTOR.hex() + "|" + "00" * 16 + "|00|00000000|00|") == "-42|"


class _Scripted:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[str] = []

    def process(self, request: str) -> str:
        self.requests.append(request)
        return self.answer


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        ("-2202|", KeySourceError, -2202),
        ("-99|", KeySourceError, -24),
        ("ZZZZZZZZ|", InvalidInput, -42),
        ("A|B|", InvalidInput, -14),
        ("-x|", InvalidInput, -14),
    ],
)
def test_hsm_answers_are_checked(answer: str, error: type[Exception], code: int) -> None:
    keys = HsmPurseKeys(_Scripted(answer))
    with pytest.raises(error) as info:
        keys.purchase_mac1(Algorithm.SM4, FACTOR, PSEED, M1)
    assert info.value.national_code == code  # type: ignore[attr-defined]


def test_hsm_verdicts_and_step_texts() -> None:
    module = _Scripted("0|")
    keys = HsmPurseKeys(module)
    assert keys.check_tac(Algorithm.TDES, FACTOR, M2, bytes(4)) is True
    assert module.requests[-1] == f"01|0029|{FACTOR.hex().upper()}|{M2.hex().upper()}|00000000|"
    assert (
        HsmPurseKeys(_Scripted("-15|")).check_purchase_mac2(Algorithm.SM4, FACTOR, PSEED, M2, bytes(4))
        is False
    )
    assert HsmPurseKeys(_Scripted("-21|")).load_mac2(Algorithm.SM4, FACTOR, SEED, M1, bytes(4), M2) is None
    with pytest.raises(InvalidInput):
        HsmPurseKeys(_Scripted("1|")).check_tac(Algorithm.SM4, FACTOR, M2, bytes(4))


def test_a_source_without_wallet_side_is_refused() -> None:
    class Bare:
        kind = "bare"

    with pytest.raises(KeySourceError) as info:
        purse_keys(Bare())  # type: ignore[arg-type]
    assert info.value.national_code == -24
    assert isinstance(purse_keys(HsmKeySource(SoftwareHsm(demo_key_set()))), HsmPurseKeys)
