"""Status words as data: meanings, classes, national codes, context."""

from __future__ import annotations

import pytest

from apdu import errors
from apdu._tables import load_table
from apdu.status import (
    describe,
    describe_national,
    error_for,
    infer_context,
    lookup,
    national_code_for_sw,
    raise_for_sw,
)


@pytest.mark.parametrize(
    ("sw", "klass", "code"),
    [
        (0x6982, errors.SecurityStatusNotSatisfied, -27010),
        (0x6983, errors.AuthMethodBlocked, -27011),
        (0x6985, errors.ConditionsNotSatisfied, -27013),
        (0x6988, errors.SecureMessagingError, -27016),
        (0x9302, errors.SecureMessagingError, -37634),
        (0x6A81, errors.ApplicationBlocked, -27265),
        (0x6283, errors.ApplicationBlocked, -0x6283),
        (0x9303, errors.ApplicationPermanentlyBlocked, -37635),
        (0x6A82, errors.FileNotFound, -27266),
        (0x6A83, errors.RecordNotFound, -27267),
        (0x6A88, errors.KeyNotFound, -27272),
        (0x6700, errors.WrongLength, -0x6700),
        (0x6A80, errors.WrongData, -0x6A80),
        (0x6D00, errors.InsNotSupported, -0x6D00),
        (0x6E00, errors.ClaNotSupported, -0x6E00),
        (0x6A86, errors.WrongParameters, -0x6A86),
        (0x6B00, errors.WrongParameters, -0x6B00),
        (0x63C0, errors.VerificationFailed, -25536),
        (0x6300, errors.VerificationFailed, -0x6300),
        (0x6F00, errors.CardError, -0x6F00),
        (0x1234, errors.CardError, -0x1234),
    ],
)
def test_mapping_without_context(sw: int, klass: type, code: int) -> None:
    exc = error_for(sw)
    assert type(exc) is klass
    assert exc is not None and exc.sw == sw and exc.national_code == code
    assert national_code_for_sw(sw) == code


@pytest.mark.parametrize(
    ("sw", "context", "klass", "code"),
    [
        (0x63C2, "pin", errors.PinError, -51),
        (0x63C2, "key", errors.AuthenticationFailed, -0x63C2),
        (0x6300, "key", errors.AuthenticationFailed, -0x6300),
        (0x6983, "pin", errors.PinBlocked, -52),
        (0x6983, "key", errors.KeyLocked, -27011),
        (0x6A82, "pin", errors.FileNotFound, -27266),
    ],
)
def test_mapping_with_context(sw: int, context: str, klass: type, code: int) -> None:
    exc = error_for(sw, context=context)  # type: ignore[arg-type]
    assert type(exc) is klass and exc is not None
    assert exc.national_code == code
    assert national_code_for_sw(sw, context) == code  # type: ignore[arg-type]


def test_retries_from_63cx() -> None:
    exc = error_for(0x63C1, context="pin")
    assert isinstance(exc, errors.PinError) and exc.retries_left == 1


def test_success() -> None:
    assert error_for(0x9000) is None
    assert national_code_for_sw(0x9000) == 0
    raise_for_sw(0x9000)
    assert lookup(0x9000).ok


def test_raise_for_sw() -> None:
    with pytest.raises(errors.PinBlocked):
        raise_for_sw(0x6983, "pin")


def test_ranges_format_their_value() -> None:
    assert describe(0x6110)[0] == "16 response bytes still available (GET RESPONSE)"
    assert "16" in describe(0x6C10)[1]
    assert describe(0x63C3)[0] == "verification failed, 3 tries left"
    assert describe(0x6281)[0].startswith("warning")


def test_most_specific_pattern_wins() -> None:
    assert lookup(0x6A82).pattern == "6A82"
    assert lookup(0x6A8F).pattern == "6Axx"
    assert lookup(0x63C5).pattern == "63Cx"
    assert lookup(0x6312).pattern == "63xx"
    assert lookup(0x0000).pattern == "xxxx"


def test_every_status_word_has_texts_and_resolves() -> None:
    for sw in range(0, 0x10000, 0x3F):
        en, zh = describe(sw)
        assert en and zh


def test_table_entries_name_real_classes() -> None:
    for row in load_table("status_words")["sw"]:
        for key in ("class", "pin", "key"):
            if key in row:
                assert issubclass(getattr(errors, row[key]), errors.CardError)


@pytest.mark.parametrize(
    ("cla", "ins", "context"),
    [
        (0x00, 0x20, "pin"),
        (0x80, 0x5E, "pin"),
        (0x84, 0x5E, "key"),
        (0x84, 0x24, "key"),
        (0x00, 0x82, "key"),
        (0x80, 0xFA, "key"),
        (0x00, 0xB2, None),
        (0x04, 0xDC, "key"),
    ],
)
def test_infer_context(cla: int, ins: int, context: str | None) -> None:
    assert infer_context(cla, ins) == context


def test_bad_sw_type() -> None:
    with pytest.raises(TypeError):
        describe(-1)


def test_describe_national() -> None:
    assert describe_national(-2) == ("no card", "无卡")
    assert describe_national(-51)[1] == "密码错误"
    assert describe_national(-27266)[0] == "file not found (6A82)"
    assert describe_national(-0x6A80) == describe(0x6A80)
    assert describe_national(0)[0] == "success"
    assert describe_national(-777) == ("error -777", "错误 -777")
