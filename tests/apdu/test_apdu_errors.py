"""The exception hierarchy, its data tables and the JSON error body."""

from __future__ import annotations

import inspect
import pickle
import re

import pytest

from apdu import errors
from apdu._tables import load_table
from apdu.errors import (
    AmbiguousReaderError,
    ApplicationBlocked,
    ApplicationPermanentlyBlocked,
    AuthenticationFailed,
    AuthMethodBlocked,
    CardError,
    CardMuteError,
    CardNotGenuine,
    CardRemovedError,
    CardResetError,
    CardUnpoweredError,
    FileNotFound,
    InvalidInput,
    KeyLocked,
    KeySourceError,
    NoCardError,
    PcscUnavailableError,
    PinBlocked,
    PinEntryError,
    PinError,
    ProtocolError,
    ReaderNotFoundError,
    SecurityStatusNotSatisfied,
    SharingViolationError,
    SscardError,
    TransportError,
    VerificationFailed,
    WrongCardType,
)

ALL_CLASSES = [
    obj
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, SscardError) and not name.startswith("_")
]

# Domain facts sheet §2: every code callers switch on.
NATIONAL_CODES = [
    -1,
    -2,
    -3,
    -4,
    -11,
    -12,
    -13,
    -14,
    -15,
    -20,
    -21,
    -22,
    -23,
    -24,
    -31,
    -32,
    -33,
    -34,
    -35,
    -36,
    -41,
    -42,
    -51,
    -52,
    -2201,
    -2202,
    -2203,
    -2204,
    -25536,
    -27010,
    -27011,
    -27013,
    -27016,
    -27265,
    -27266,
    -27267,
    -27272,
    -37634,
    -37635,
]


def test_every_class_has_data_defaults() -> None:
    for klass in ALL_CLASSES:
        assert re.fullmatch(r"[a-z_]+", klass.error_id), klass
        assert isinstance(klass.national_code, int) and klass.national_code < 0, klass
        assert klass.message_zh or issubclass(klass, CardError), klass


def test_error_ids_are_unique() -> None:
    ids = [k.error_id for k in ALL_CLASSES]
    assert len(ids) == len(set(ids))


def test_errors_toml_has_no_orphans() -> None:
    names = {k.__name__ for k in ALL_CLASSES}
    assert set(load_table("errors")["classes"]) == names


def test_national_code_table_is_complete() -> None:
    table = load_table("national_codes")["codes"]
    for code in NATIONAL_CODES:
        row = table[str(code)]
        assert row["zh"] and row["en"]
    for klass in ALL_CLASSES:
        if klass.national_code > -10000:  # not a -SW code
            assert str(klass.national_code) in table, klass


@pytest.mark.parametrize(
    ("exc", "error_id", "code"),
    [
        (PcscUnavailableError(), "pcsc_unavailable", -11),
        (ReaderNotFoundError(), "reader_not_found", -12),
        (AmbiguousReaderError(), "reader_ambiguous", -14),
        (NoCardError(), "no_card", -2),
        (CardRemovedError(), "card_removed", -2),
        (CardUnpoweredError(), "card_unpowered", -3),
        (CardMuteError(), "card_mute", -4),
        (CardResetError(), "card_reset", -11),
        (SharingViolationError(), "sharing_violation", -11),
        (WrongCardType(), "wrong_card_type", -1),
        (CardNotGenuine(), "card_not_genuine", -21),
        (KeySourceError(), "key_source_error", -24),
        (KeySourceError(kind="no_psam"), "no_psam", -2201),
        (KeySourceError(kind="no_algorithm"), "psam_no_algorithm", -2202),
        (KeySourceError(kind="no_reading_key"), "psam_no_reading_key", -2203),
        (KeySourceError(kind="no_hsm_needed"), "no_hsm_needed", -2204),
        (PinEntryError(kind="cancelled"), "pin_entry_cancelled", -31),
        (PinEntryError(kind="timeout"), "pin_entry_timeout", -32),
        (PinEntryError(kind="length"), "pin_length", -33),
        (PinEntryError(kind="mismatch"), "pin_mismatch", -34),
        (PinEntryError(kind="initial_pin_use"), "initial_pin_use", -35),
        (PinEntryError(kind="initial_pin_reuse"), "initial_pin_reuse", -36),
        (InvalidInput(kind="chars"), "illegal_characters", -41),
        (InvalidInput(kind="length"), "wrong_data_length", -42),
        (InvalidInput(kind="parameter"), "invalid_parameter", -14),
        (ProtocolError("x"), "protocol_error", -1001),
    ],
)
def test_codes_and_ids(exc: SscardError, error_id: str, code: int) -> None:
    assert exc.error_id == error_id
    assert exc.national_code == code
    body = exc.to_dict()
    assert body["error"] == error_id and body["national_code"] == code
    assert "sw" not in body
    assert body["message"] and body["message_en"]


def test_kind_from_national_code() -> None:
    exc = PinEntryError(national_code=-34)
    assert exc.kind == "mismatch" and exc.error_id == "pin_mismatch"
    assert KeySourceError(national_code=-2203).kind == "no_reading_key"


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        InvalidInput(kind="bogus")  # type: ignore[arg-type]


def test_to_dict_shape_for_card_error() -> None:
    body = FileNotFound().to_dict()
    assert body == {
        "error": "file_not_found",
        "message": "未找到文件",
        "message_en": "file not found (SW 6A82)",
        "national_code": -27266,
        "sw": "6A82",
    }


def test_card_error_national_is_minus_sw() -> None:
    assert CardError(0x6A82).national_code == -27266
    assert CardError(sw=0x9303).national_code == -37635
    assert SecurityStatusNotSatisfied().national_code == -27010
    assert ApplicationPermanentlyBlocked().national_code == -37635
    assert CardError(0x6A82).sw == 0x6A82


def test_card_error_string_first_argument_is_message() -> None:
    exc = FileNotFound("EF06 missing")
    assert str(exc) == "EF06 missing" and exc.sw == 0x6A82


def test_pin_error_retries_and_national_code() -> None:
    exc = PinError(0x63C2)
    assert exc.retries_left == 2
    assert exc.national_code == -51
    assert exc.to_dict()["sw"] == "63C2"
    assert "2" in exc.message_zh and "2" in str(exc)
    assert PinError(retries_left=1).sw == 0x63C1


def test_authentication_failed_keeps_minus_sw() -> None:
    exc = AuthenticationFailed(0x63C0)
    assert exc.national_code == -25536 and exc.retries_left == 0
    assert AuthenticationFailed(0x6300).retries_left is None


def test_blocked_classes() -> None:
    assert PinBlocked().national_code == -52 and PinBlocked().sw == 0x6983
    assert KeyLocked().national_code == -27011
    assert issubclass(PinBlocked, AuthMethodBlocked) and issubclass(KeyLocked, AuthMethodBlocked)
    assert issubclass(PinError, VerificationFailed) and issubclass(AuthenticationFailed, VerificationFailed)


def test_application_blocked_temporary() -> None:
    assert ApplicationBlocked(0x6283).temporary
    assert not ApplicationBlocked(0x6A81).temporary
    assert issubclass(ApplicationPermanentlyBlocked, ApplicationBlocked)


def test_transport_hierarchy() -> None:
    for klass in (
        PcscUnavailableError,
        ReaderNotFoundError,
        NoCardError,
        CardMuteError,
        CardResetError,
    ):
        assert issubclass(klass, TransportError)
    assert issubclass(CardRemovedError, NoCardError)


def test_explicit_overrides() -> None:
    exc = SscardError("boom", message_zh="出错", sw=0x6F00, national_code=-23)
    assert exc.to_dict() == {
        "error": "error",
        "message": "出错",
        "message_en": "boom",
        "national_code": -23,
        "sw": "6F00",
    }


@pytest.mark.parametrize(
    "exc",
    [
        PinError(0x63C1),
        FileNotFound("custom"),
        KeySourceError(kind="no_psam"),
        NoCardError("slot 1"),
        SscardError("x", sw=0x9000, national_code=-5),
        ApplicationBlocked(0x6283),
    ],
)
def test_pickle_round_trip(exc: SscardError) -> None:
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert clone.to_dict() == exc.to_dict()


def test_bad_status_word_type() -> None:
    with pytest.raises(TypeError):
        CardError(0x10000)


def test_subclasses_defined_elsewhere_inherit_or_override() -> None:
    class RegistryRefused(SscardError):
        error_id = "registry_refused"
        national_code = -1010
        message_zh = "业务规则不允许"
        message_en = "refused by a business rule"

    class CardGone(NoCardError):
        pass

    assert RegistryRefused().to_dict() == {
        "error": "registry_refused",
        "message": "业务规则不允许",
        "message_en": "refused by a business rule",
        "national_code": -1010,
    }
    assert CardGone().error_id == "no_card" and CardGone().national_code == -2
    assert isinstance(CardGone(), NoCardError)


def test_card_error_subclass_defined_elsewhere() -> None:
    class WalletError(CardError):
        error_id = "wallet_error"

    exc = WalletError(0x9401)
    assert exc.error_id == "wallet_error" and exc.national_code == -0x9401
    assert exc.to_dict()["sw"] == "9401" and exc.message_zh == "金额不足"
