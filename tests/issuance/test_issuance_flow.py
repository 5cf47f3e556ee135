"""Instant issuance in process: a blank stock card personalised through the
terminal (card OS and PSAM objects), the registry, the journal, resumption,
conflicts, scrapping and the refusals."""

from __future__ import annotations

import pytest
from issuance_helpers import ACTOR, StockCard, check_finished_card, order_for

from apdu.errors import InvalidInput, KeySourceError
from apdu.inprocess import InProcessTransport
from card_model.demo import demo_key_set, demo_psam_image
from card_model.errors import HolderFileError, InvalidValue
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.psam_image import PsamImage
from emulator.psam import PsamCard
from terminal import flows
from terminal.errors import CardDataMismatch, TornOperation
from terminal.flows.issuance import inspect_card, issue_card, scrap_card
from terminal.issuance import CardNotBlank, IssuanceConflict, IssuanceOrder
from terminal.journal_hook import MemoryJournal
from terminal.keysource import DevKeyFileKeySource, DevKeysWarning, HsmKeySource, PsamKeySource, SoftwareHsm
from terminal.registry import Journal, Registry

Opened = tuple[Registry, Journal]


def test_full_issuance_from_a_blank_card(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(1)
    journal = MemoryJournal()
    session = stock.session(journal=journal)
    before = inspect_card(session)
    assert before.life_cycle is LifeCycle.BLANK and before.loaded_roles == ("KTK",)
    assert before.to_dict()["pin_loaded"] is False and before.card_number is None
    result = issue_card(session, order_for(), registry=reg, actor=ACTOR)
    assert result.life_cycle is LifeCycle.PERSONALISED and result.registry_status == "issued"
    assert not result.resumed and result.steps_run > 20 and result.steps_skipped == 0
    assert result.to_dict()["card_number"] == "X00000019" and result.certificate_serial
    check_finished_card(session, "110102197305211008", "211008")
    image = stock.os.image
    for role in KeyRole:
        assert image.keys[role.kid].value == demo_key_set().card_key(Algorithm.SM4, role, image.card_id[8:])
    card = reg.card(result.card_id)
    assert card.card_number == "X00000019" and card.status == "issued" and card.generation == 3
    assert reg.holder("110102197305211008").name == "张三"
    issue = journal.last("card.issue")
    assert issue.state == "completed" and issue.result == "ok"
    assert issue.details["ssn"] == "110102***********8" and "张三" not in str(issue.details)
    steps = [e for e in journal.entries if e.operation == "card.issue.step"]
    assert len(steps) == result.steps_run and all(e.result == "ok" for e in steps)
    assert {e.details["step"] for e in steps} >= {
        "load_key",
        "write_record",
        "load_pin",
        "generate_key_pair",
        "write_certificate",
        "import_encryption_key",
        "end_personalisation",
    }
    after = inspect_card(stock.session())
    assert after.life_cycle is LifeCycle.PERSONALISED and after.flags == 0x3F
    with pytest.raises(CardNotBlank) as again:
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert again.value.exit_code == 10 and journal.last("card.issue").result == "refused"


def test_issuance_with_activation_and_other_key_sources(registry: Opened) -> None:
    reg, _ = registry
    hsm = HsmKeySource(SoftwareHsm(demo_key_set()))
    stock = StockCard(2)
    result = issue_card(
        stock.session(key_source=hsm),
        order_for(card_number="X00000027"),
        registry=reg,
        actor=ACTOR,
        activate=True,
    )
    assert result.life_cycle is LifeCycle.ACTIVE and result.registry_status == "active"
    with pytest.warns(DevKeysWarning):
        dev = DevKeyFileKeySource(demo_key_set())
    other = StockCard(3)
    issued = issue_card(
        other.session(key_source=dev), order_for(card_number="X00000035"), registry=reg, actor=ACTOR
    )
    check_finished_card(other.session(key_source=dev), "110102197305211008", "211008")
    assert len(reg.cards_of("110102197305211008")) == 2 and issued.generation == 3


def test_long_name_and_x_in_the_ssn(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(4)
    session = stock.session()
    issue_card(session, order_for("x_long_name", region_code="110102"), registry=reg, actor=ACTOR)
    check_finished_card(session, "11010819850612101X", "121010")
    assert len(stock.os.image.record_files[0xEF06].records[0x4E]) > 0


def test_generation_2_card_has_no_sm2_steps(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(5, generation=2)
    journal = MemoryJournal()
    session = stock.session(journal=journal)
    result = issue_card(session, order_for("gen2", region_code="110102"), registry=reg, actor=ACTOR)
    assert result.generation == 2 and result.certificate_serial is None
    assert not any(e.details.get("step") == "generate_key_pair" for e in journal.entries)
    check_finished_card(session, "110105196209152006", "152006")


def test_an_order_for_another_region_is_refused_before_any_write(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(6)
    journal = MemoryJournal()
    with pytest.raises(CardDataMismatch) as info:
        issue_card(stock.session(journal=journal), order_for(region_code="110105"), registry=reg, actor=ACTOR)
    assert info.value.national_code == -22
    assert journal.last("card.issue").result == "refused"
    assert stock.os.image.revision == 0 and sorted(stock.os.image.keys) == [KeyRole.KTK.kid]


def test_resumption_skips_what_the_card_holds(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(7)
    journal = MemoryJournal()
    stock.arm("tear_after", 3, ins=0xD4)  # the third WRITE KEY
    with pytest.raises(TornOperation) as torn:
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert torn.value.operation == "card.issue.step"
    progress = inspect_card(stock.session())
    assert progress.life_cycle is LifeCycle.BLANK and len(progress.loaded_roles) > 1
    result = issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert result.resumed and result.steps_skipped > 0
    assert [(e.operation, e.outcome) for e in result.resolved] == [("card.issue.step", "applied")]
    assert journal.incomplete(result.card_id) == []
    assert sum(1 for e in journal.entries if e.operation == "card.issue") == 1


def test_conflicting_order_is_refused_and_the_card_scrapped(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(8)
    journal = MemoryJournal()
    stock.arm("tear_before", 6, ins=0xDC)  # EF05 05-07 and EF06 08, 09 written
    with pytest.raises(TornOperation):
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert 0x08 in stock.os.image.record_files[0xEF06].records
    other = order_for("x_long_name", region_code="110102", card_number="X00000043")
    with pytest.raises(IssuanceConflict) as conflict:
        issue_card(stock.session(journal=journal), other, registry=reg, actor=ACTOR)
    assert conflict.value.national_code == -22 and conflict.value.exit_code == 10
    scrapped = scrap_card(stock.session(journal=journal))
    assert scrapped.life_cycle is LifeCycle.PERMANENTLY_BLOCKED
    assert scrapped.to_dict()["life_cycle_before"] == "blank"
    assert journal.incomplete(scrapped.card_id) == []
    first = next(e for e in journal.entries if e.operation == "card.issue")
    assert first.resolution == "scrapped" and journal.last("card.issue").result == "refused"
    assert inspect_card(stock.session()).life_cycle is LifeCycle.PERMANENTLY_BLOCKED
    with pytest.raises(CardNotBlank):
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert scrap_card(stock.session(journal=journal)).life_cycle_before is LifeCycle.PERMANENTLY_BLOCKED
    assert not reg.exists(scrapped.card_id)
    issued = StockCard(11)
    issue_card(issued.session(), order_for(card_number="X00000099"), registry=reg, actor=ACTOR)
    with pytest.raises(CardNotBlank):
        scrap_card(issued.session())


def test_a_scrap_torn_after_the_block_is_settled_by_the_next_scrap(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(12)
    journal = MemoryJournal()
    stock.arm("tear_before", 6, ins=0xDC)
    with pytest.raises(TornOperation):
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    stock.arm("tear_after", 1, ins=0x1E)
    with pytest.raises(TornOperation):
        scrap_card(stock.session(journal=journal))
    settled = scrap_card(stock.session(journal=journal))
    # the torn UPDATE RECORD was settled by the first scrap, before it blocked the card
    assert [(e.operation, e.outcome) for e in settled.resolved] == [("card.scrap", "applied")]
    assert any(
        e.operation == "card.issue.step" and e.resolution == "card_state_not_applied" for e in journal.entries
    )
    assert journal.incomplete(settled.card_id) == []


def test_order_input_errors() -> None:
    with pytest.raises(HolderFileError):
        order_for(serial="0011223344556677")
    with pytest.raises(InvalidValue):
        order_for(expiry_date="2020-01-01")
    with pytest.raises(InvalidValue):
        IssuanceOrder.from_mapping(order_for().holder.to_mapping(), {"card_number": "X00000019"})
    with pytest.raises(HolderFileError):
        IssuanceOrder.from_toml("[holder]\nssn = 1")
    text = (
        '[holder]\nssn = "110102197305211008"\nname = "张三"\ngender = "1"\nethnicity = "01"\n'
        'birthplace = "110102"\nbirth_date = "1973-05-21"\n'
        '[card]\ncard_number = "X00000019"\nissue_date = "2025-03-01"\nexpiry_date = "2035-02-28"\n'
        'bank = "Bank of Beijing"\n'
    )
    order = IssuanceOrder.from_toml(text)
    assert order.check() == IssuanceOrder.from_toml(text).check() and "张三" not in repr(order)
    assert order.public_dict()["bank"] == "Bank of Beijing"


class _NoLoading:
    """A key source that cannot load keys (only the three base operations)."""

    kind = "psam"
    terminal_number = ""

    def __init__(self, inner: PsamKeySource) -> None:
        self.inner = inner

    def external_auth(self, *args: object) -> bytes:
        return self.inner.external_auth(*args)  # type: ignore[arg-type]

    def mac(self, *args: object) -> bytes:
        return self.inner.mac(*args)  # type: ignore[arg-type]

    def verify_internal_auth(self, *args: object) -> bool:
        return self.inner.verify_internal_auth(*args)  # type: ignore[arg-type]

    def close(self) -> None:
        self.inner.close()


def test_key_sources_that_cannot_load_keys(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(9)
    from issuance_helpers import psam_source

    with pytest.raises(KeySourceError) as none:
        issue_card(
            stock.session(key_source=_NoLoading(psam_source())), order_for(), registry=reg, actor=ACTOR
        )  # type: ignore[arg-type]
    assert none.value.national_code == -24
    image = PsamImage.from_key_set(demo_key_set(), "110102000001", usage={KeyRole.KTK: ["mac"]})
    weak = PsamKeySource(InProcessTransport(PsamCard(image), reader="In-process PSAM"))
    with pytest.raises(KeySourceError) as level:
        issue_card(stock.session(key_source=weak), order_for(), registry=reg, actor=ACTOR)
    assert level.value.national_code == -24 and level.value.sw == 0x6985
    assert sorted(stock.os.image.keys) == [KeyRole.KTK.kid]
    with pytest.raises(InvalidInput):
        psam_source().write_key_body(Algorithm.SM4, bytes(8), bytes(16), 0x01, 0x01, b"\x12\x3a\x56")
    assert demo_psam_image().keys[KeyRole.KTK.kid].usage == frozenset({"wrap"})


def test_an_ordinary_session_settles_the_torn_steps_of_a_finished_card(registry: Opened) -> None:
    reg, _ = registry
    stock = StockCard(10)
    journal = MemoryJournal()
    stock.arm("tear_after", 1, ins=0x44)
    with pytest.raises(TornOperation):
        issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    session = stock.session(journal=journal)
    session.connect()  # END OF PERSONALISATION ran: an ordinary session detects the card
    resolution = flows.resolve_torn(session)
    outcomes = {(e.operation, e.outcome) for e in resolution.entries}
    assert outcomes == {("card.issue.step", "applied"), ("card.issue", "undetermined")}
    assert [e.operation for e in resolution.unresolved] == ["card.issue"]
    assert not reg.exists(session.card_id)
    result = issue_card(stock.session(journal=journal), order_for(), registry=reg, actor=ACTOR)
    assert result.resumed and result.steps_run == 0 and reg.exists(result.card_id)
    assert journal.incomplete(result.card_id) == []
