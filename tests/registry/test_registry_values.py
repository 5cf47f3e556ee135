"""Input checks (card_model.values behind the registry's own errors), bank list,
masking and the journal-details sanitizer (no database)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from card_model.values import partner_banks, ssn_check_digit
from terminal.registry import catalog, errors, sanitize
from terminal.registry import validation as values

VALID_SSN = "110102197305211008"
X_SSN = "11010519491231002X"  # check character X


def test_valid_ssns_pass() -> None:
    assert values.ssn(VALID_SSN) == VALID_SSN
    assert values.ssn(X_SSN) == X_SSN


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("110102197305211009", "check digit"),
        ("11010519491231002x", "lower-case x"),
        ("11010219730521100", "17 characters"),
        ("1101021973052110080", "19 characters"),
        ("110102197313211008", "month 13"),
        ("1101021973052110A8", "letter inside"),
        (" 110102197305211008", "space"),
        (110102197305211008, "not text"),
        (None, "none"),
    ],
)
def test_invalid_ssns_are_refused_without_echoing_them(bad: object, why: str) -> None:
    with pytest.raises(errors.InvalidSsn) as info:
        values.ssn(bad)
    error = info.value
    assert error.error_id == "ssn_invalid" and error.national_code == -1111 and error.exit_code == 1
    assert str(bad) not in str(error) and str(bad) not in error.message_zh


def test_check_digit_matches_iso_7064_mod_11_2() -> None:
    # ISO 7064 MOD 11-2: sum of digit * 2^(17-i) plus the check value is 1 mod 11
    for body in ("11010219730521100", "11010519491231002", "44030419990101123"):
        check = ssn_check_digit(body)
        value = 10 if check == "X" else int(check)
        total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(body))
        assert (total + value) % 11 == 1


@pytest.mark.parametrize(
    "bad",
    [
        "110102D15600000500000000000001",  # 30 digits
        "110102D156000006" + "0" * 16,  # wrong RID
        "11010AD156000005" + "0" * 16,  # region not BCD
        "110102D156000005" + "0" * 15 + "G",  # not hex
        12345,
    ],
)
def test_invalid_card_ids(bad: object) -> None:
    with pytest.raises(errors.InvalidCardId):
        values.card_id(bad)


def test_card_id_is_normalised_to_upper_case() -> None:
    assert values.card_id("110102d156000005" + "00000000000000ab") == "110102D156000005" + "00000000000000AB"


@pytest.mark.parametrize("bad", ["X0000001", "x00000019", "X000000190", "X0000001-"])
def test_invalid_card_numbers(bad: str) -> None:
    with pytest.raises(errors.InvalidCardData):
        values.card_number(bad)


def test_dates_generations_names_genders() -> None:
    with pytest.raises(errors.InvalidCardData):
        values.validity("2035-01-01", "2025-01-01")
    with pytest.raises(errors.InvalidCardData):
        values.date_value("2025-02-30", "issue_date")
    # the card model's date forms: date, YYYY-MM-DD and the card's YYYYMMDD
    assert values.date_value("20250301", "issue_date") == date(2025, 3, 1)
    assert values.date_value(date(2025, 3, 1), "issue_date") == date(2025, 3, 1)
    for bad_date in ("28/02/2035", "1899-12-31", datetime(2025, 3, 1, 8, 0), 20250301):
        with pytest.raises(errors.InvalidCardData) as info:
            values.date_value(bad_date, "expiry_date")
        assert "expiry date" in str(info.value) and "卡有效期" in info.value.message_zh
    for bad_generation in (0, 4, True, "3"):
        with pytest.raises(errors.InvalidCardData):
            values.generation(bad_generation)
    for bad_name in ("", "   ", "a\nb", "😀"):
        with pytest.raises(errors.InvalidHolderData):
            values.holder_name(bad_name)
    assert values.holder_name(" 欧阳娜娜 ") == "欧阳娜娜"
    long_name = "阿卜杜热合曼·买买提艾力·阿不都热西提"
    assert values.holder_name(long_name) == long_name
    with pytest.raises(errors.InvalidHolderData):  # fits the card (255 GBK bytes), not the column
        values.holder_name("A" * (values.NAME_COLUMN_CHARS + 1))
    assert values.gender(None) is None and values.gender("9") == "9"
    with pytest.raises(errors.InvalidHolderData):
        values.gender("3")


def test_the_fifteen_partner_banks() -> None:
    codes = [b.code for b in partner_banks()]
    assert len(codes) == 15 == len(set(codes))
    for name in (
        "ICBC",
        "ABC",
        "BOC",
        "CCB",
        "BOCOM",
        "CITIC",
        "CEB",
        "Hua Xia",
        "CMBC",
        "CGB",
        "CMB",
        "SPDB",
        "Bank of Beijing",
        "Beijing Rural Commercial Bank",
        "PSBC",
    ):
        assert values.bank(name).code in codes
    assert values.bank("  bank   of beijing ").code == "BOB"
    assert values.bank("北京农商银行").code == "BRCB"
    with pytest.raises(errors.UnknownBank):
        values.bank("HSBC")


def test_masking() -> None:
    assert sanitize.mask_ssn(VALID_SSN) == "110102***********8"
    assert sanitize.mask_text(f"holder {X_SSN}, again {VALID_SSN}.") == (
        "holder 110105***********X, again 110102***********8."
    )
    card_id = "110102D156000005" + "0000000000000001"
    assert sanitize.mask_text(card_id) == card_id  # hex codes are not ID numbers
    assert sanitize.mask_text("amount 12345678") == "amount 12345678"
    assert sanitize.mask_document("E12345678") == "E*******8"


def test_details_are_masked_and_secrets_refused() -> None:
    clean = sanitize.details(
        {"ssn": VALID_SSN, "note": f"id {VALID_SSN}", "tries": 3, "ok": True, "skip": None}
    )
    assert clean == {"ssn": "110102***********8", "note": "id 110102***********8", "tries": "3", "ok": "true"}
    for key in (
        "pin",
        "PIN",
        "new_pin",
        "pinBlock",
        "session_key",
        "keyVersion",
        "password",
        "service-password",
        "secret",
        "clientSecret",
        "passwd",
        "newpin",
    ):
        with pytest.raises(errors.JournalDetailsForbidden) as info:
            sanitize.details({key: "x"})
        assert info.value.national_code == -1117
    for bad in ({"1abc": "x"}, {"ok": 1.5}, {"ok": "x" * 501}, ["not", "a", "mapping"]):
        with pytest.raises(errors.JournalInputInvalid):
            sanitize.details(bad)  # type: ignore[arg-type]


def test_error_catalogue_is_complete_and_codes_unique() -> None:
    classes: list[type[errors.RegistryError]] = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.RegistryError)
    ]
    ids = {c.error_id for c in classes}
    assert ids <= set(catalog.errors())
    codes = [t.national_code for t in catalog.errors().values()]
    assert len(codes) == len(set(codes))
    assert all(-1199 <= code <= -1100 for code in codes)
    for cls in classes:
        assert cls.exit_code == (10 if issubclass(cls, errors.RegistryRefused) else 1)
        assert issubclass(cls, errors.SscardError)


def test_state_catalogue_is_consistent() -> None:
    rules = catalog.rules()
    assert rules.temporary_loss_days == 15 and rules.bank_change_min_months == 6
    assert rules.agent_operations == {"activate", "report_loss_temporary", "change_password", "query_status"}
    assert set(catalog.reasons()) >= {"card_ok", "card_lost", "card_replaced", "card_cancelled"}
    assert all(
        r.block_on_card == (not r.allowed)
        for r in catalog.reasons().values()
        if r.reason_id != "card_not_registered_refused"
    )


def test_card_model_errors_become_registry_errors_without_repeating_the_field() -> None:
    with pytest.raises(errors.InvalidSsn) as ssn:
        values.ssn("110102197305211009")
    assert ssn.value.national_code == -1111 and ssn.value.exit_code == 1
    assert str(ssn.value) == "invalid social security number: check digit does not match (GB 11643)"
    assert ssn.value.message_zh == "社会保障号码无效：校验码错误"
    with pytest.raises(errors.InvalidCardId) as card:
        values.card_id("990102D156000005" + "0" * 16)  # no province 99
    assert card.value.national_code == -1112 and "province" in str(card.value)
    assert card.value.__cause__ is None and card.value.__suppress_context__
    with pytest.raises(errors.UnknownBank) as bank:
        values.bank(None)
    assert bank.value.national_code == -1113 and "BOB" in str(bank.value)
