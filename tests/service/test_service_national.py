"""The national-interface drop-in, used as existing counter software uses it:
open ``ws://127.0.0.1:18081`` (no path), send ``{"function": ..., "iType": 3}``,
read ``success`` and split ``pOutInfo`` on ``|``.  The security module of the
``_HSM_Step`` sequences is played by the software HSM over the demo keys."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service_cards import (
    COUNTER_ORIGIN,
    INITIAL_PIN,
    NATIONAL_WS,
    NEW_PIN,
    SSN,
    WRONG_PIN,
    ForeignCard,
    PullingCard,
    card_os,
    fields,
)
from service_harness import Insert, MakeService, Service

from apdu.errors import PinEntryError
from card_model.demo import demo_key_set
from card_model.lifecycle import LifeCycle
from terminal.keysource import SoftwareHsm
from terminal.service.national_protocol import function_specs

# Every function of the domain facts sheet (§2), with its _HSM_Step variants.
NATIONAL_FUNCTIONS = {
    "iReadCardBas",
    "iReadCardBas_HSM_Step1",
    "iReadCardBas_HSM_Step2",
    "iReadCard",
    "iReadCard_HSM_Step1",
    "iReadCard_HSM_Step2",
    "iWriteCard",
    "iWriteCard_HSM_Step1",
    "iWriteCard_HSM_Step2",
    "iVerifyPIN",
    "iChangePIN",
    "iReloadPIN",
    "iReloadPIN_HSM_Step1",
    "iReloadPIN_HSM_Step2",
    "iReloadPIN_HSM_Step3",
    "iUnblockPIN",
    "iUnblockPIN_HSM_Step1",
    "iUnblockPIN_HSM_Step2",
    "iUnblockPIN_HSM_Step3",
    "iDoDebit",
    "iDoDebit_HSM_Step1",
    "iDoDebit_HSM_Step2",
    "iReadDebitRecord",
    "iReadSignatureKey",
    "iWriteCA",
    "iGetReaderInfo",
}
HEX = re.compile(r"^[0-9A-F]+$")


class Counter:
    """A counter page's view of the drop-in: one WebSocket, call and answer."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def call(self, function: str, **args: Any) -> dict[str, Any]:
        self.ws.send_json({"function": function, **args})
        answer: dict[str, Any] = self.ws.receive_json()
        assert set(answer) >= {"function", "success", "pOutInfo", "message"}, answer
        assert isinstance(answer["success"], int) and isinstance(answer["pOutInfo"], str)
        assert answer["message"]
        return answer

    def ok(self, function: str, **args: Any) -> str:
        answer = self.call(function, **args)
        assert answer["success"] == 0, answer
        assert answer["function"] == function and answer["message"] == "成功"
        out: str = answer["pOutInfo"]
        return out

    def code(self, function: str, **args: Any) -> int:
        code: int = self.call(function, **args)["success"]
        return code


@contextmanager
def counter(service: Service, *, origin: str | None = COUNTER_ORIGIN) -> Iterator[Counter]:
    headers = {"Origin": origin} if origin else {}
    with service.client.websocket_connect(NATIONAL_WS, headers=headers) as ws:
        yield Counter(ws)


def hsm() -> SoftwareHsm:
    return SoftwareHsm(demo_key_set())


def card_info_of(service: Service) -> str:
    basic = service.post("/card/basic").json()
    return f"{basic['card_id']}|{basic['card_number']}|"


def test_every_function_of_the_facts_sheet_is_offered(svc: Service) -> None:
    assert set(function_specs()) == NATIONAL_FUNCTIONS
    described = svc.client.get("http://127.0.0.1:18081/").json()
    assert set(described["functions"]) == NATIONAL_FUNCTIONS


def test_counter_reads_basic_information(svc: Service, insert: Insert) -> None:
    with counter(svc) as page:
        answer = page.call("iReadCardBas", iType=3)
        assert answer["success"] == -2 and answer["pOutInfo"] == "" and "插卡" in answer["message"]
        with insert(card_os(3)):
            out = page.ok("iReadCardBas", iType=3)
            parts = fields(out)
            assert len(parts) == 11
            ssn, name = parts[1], parts[4]
            assert ssn == SSN and name == "张三"
            assert (
                parts[0] == "110102" and parts[2] == "X00000019" and parts[3].startswith("110102D156000005")
            )
            assert parts[5] == "424A5353433300039000" and parts[6] == "3.00"
            assert parts[7:] == ["20250301", "20350228", "110102000001", "DEV-0001"]
            # iType as a digit string, and a request id echoed back.
            page.ws.send_json({"function": "iReadCardBas", "iType": "1", "id": 7})
            echoed = page.ws.receive_json()
            assert echoed["success"] == 0 and echoed["id"] == 7
            assert page.code("iReadCardBas", iType=2) == -2  # the reader is a contact reader
        with insert(ForeignCard()):
            assert page.code("iReadCardBas", iType=3) == -1
        with insert(card_os(1)):
            assert fields(page.ok("iReadCardBas", iType=3))[1] == "110106199002283017"


def test_counter_verifies_and_changes_the_pin(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)), counter(svc) as page:
        svc.pins.push(INITIAL_PIN)
        assert page.ok("iVerifyPIN", iType=3) == ""
        svc.pins.push(WRONG_PIN)
        wrong = page.call("iVerifyPIN", iType=3)
        assert wrong["success"] == -51 and fields(wrong["pOutInfo"]) == ["2"]
        svc.pins.push(PinEntryError(kind="cancelled"))
        assert page.code("iVerifyPIN", iType=3) == -31
        assert page.code("iVerifyPIN", iType=3) == -32  # nobody typed
        svc.pins.push(INITIAL_PIN, INITIAL_PIN)
        assert page.code("iChangePIN", iType=3) == -36
        svc.pins.push(INITIAL_PIN, NEW_PIN)
        assert page.ok("iChangePIN", iType=3) == ""
        svc.pins.push(NEW_PIN)
        assert page.ok("iVerifyPIN", iType=3) == ""
        for left in ("2", "1", "0"):
            svc.pins.push(WRONG_PIN)
            answer = page.call("iVerifyPIN", iType=3)
            assert answer["success"] == -51 and answer["pOutInfo"] == f"{left}|"
        svc.pins.push(NEW_PIN)
        assert page.code("iVerifyPIN", iType=3) == -52


def test_counter_resets_and_unblocks_the_pin(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)), counter(svc) as page:
        card_info = card_info_of(svc)
        svc.pins.push(INITIAL_PIN, NEW_PIN)
        page.ok("iChangePIN", iType=3)
        assert (
            page.code("iReloadPIN", iType=3, pCardInfo="110102D156000005" + "11" * 8 + "|X00000020|") == -22
        )
        assert page.code("iReloadPIN", iType=3, pCardInfo="not a card id|X|") == -20
        assert page.ok("iReloadPIN", iType=3, pCardInfo=card_info) == ""
        assert svc.post("/pin/status").json()["state"] == "initial"
        for _ in range(3):
            svc.pins.push(WRONG_PIN)
            page.call("iVerifyPIN", iType=3)
        assert svc.post("/pin/status").json()["state"] == "blocked"
        assert page.ok("iUnblockPIN", iType=3, pCardInfo=card_info) == ""
        svc.pins.push(INITIAL_PIN)
        assert page.ok("iVerifyPIN", iType=3) == ""
        assert page.ok("iReloadPIN", iType=3, pCardInfo="") == ""  # an empty pCardInfo checks nothing


def test_hsm_read_card_bas(svc: Service, insert: Insert) -> None:
    module = hsm()
    with insert(card_os(3)), counter(svc) as page:
        request = page.ok("iReadCardBas_HSM_Step1", iType=3)
        flag, address, factor, challenge = fields(request)
        assert (flag, address) == ("03", "0003") and len(factor) == 16 and len(challenge) == 16
        assert HEX.match(factor) and HEX.match(challenge)
        out = page.ok("iReadCardBas_HSM_Step2", pKey=module.process(request))
        assert fields(out)[1] == SSN and fields(out)[4] == "张三"
        # The sequence is over: another Step2 has nothing to continue.
        assert page.call("iReadCardBas_HSM_Step2", pKey="")["success"] == -14
        # A module that lacks the reading key: the national answer without SSN and name.
        page.ok("iReadCardBas_HSM_Step1", iType=3)
        partial = fields(page.ok("iReadCardBas_HSM_Step2", pKey="-2203|"))
        assert partial[1] == "" and partial[4] == "" and partial[2] == "X00000019"
        # A garbled answer is refused, and the card is free again afterwards.
        page.ok("iReadCardBas_HSM_Step1", iType=3)
        assert page.code("iReadCardBas_HSM_Step2", pKey="XYZ|") in (-41, -42, -14)
        assert page.ok("iReadCardBas", iType=3)
    with insert(card_os(1)), counter(svc) as page:
        answer = page.call("iReadCardBas_HSM_Step1", iType=3)
        assert answer["success"] == -2204 and fields(answer["pOutInfo"])[1] == "110106199002283017"


def test_hsm_pin_reload_and_unblock(svc: Service, insert: Insert) -> None:
    module = hsm()
    with insert(card_os(3)), counter(svc) as page:
        card_info = card_info_of(svc)
        svc.pins.push(INITIAL_PIN, NEW_PIN)
        page.ok("iChangePIN", iType=3)
        step1 = page.ok("iReloadPIN_HSM_Step1", iType=3, pCardInfo=card_info)
        assert fields(step1)[:2] == ["03", "0003"]  # RK: read the SSN for the initial PIN
        step2 = page.ok("iReloadPIN_HSM_Step2", pKey=module.process(step1))
        assert fields(step2)[:2] == ["03", "0005"]  # PRK: the MAC of RELOAD PIN
        assert page.ok("iReloadPIN_HSM_Step3", pKey=module.process(step2)) == ""
        assert svc.post("/pin/status").json()["state"] == "initial"

        for _ in range(3):
            svc.pins.push(WRONG_PIN)
            page.call("iVerifyPIN", iType=3)
        step1 = page.ok("iUnblockPIN_HSM_Step1", iType=3, pCardInfo=card_info)
        assert fields(step1)[:2] == ["03", "0006"]  # PUK
        assert page.ok("iUnblockPIN_HSM_Step2", pKey=module.process(step1)) == ""
        assert page.ok("iUnblockPIN_HSM_Step3", pKey="") == ""  # the third step repeats the answer
        assert svc.post("/pin/status").json()["retries_left"] == 3
        # Steps out of order.
        assert page.code("iUnblockPIN_HSM_Step2", pKey="") == -14
        page.ok("iReloadPIN_HSM_Step1", iType=3, pCardInfo=card_info)
        assert page.code("iReloadPIN_HSM_Step3", pKey="00|") == -14


def test_generic_read_and_write(svc: Service, insert: Insert) -> None:
    module = hsm()
    with insert(card_os(3)), counter(svc) as page:
        card_info = card_info_of(svc)
        address = "3F00EF06|08|09|4E|0A|0B|0C|0D|$"
        every_tag = fields(page.ok("iReadCard", iType=3, iAuthType=1, pCardInfo=card_info, pFileAddr=address))
        assert every_tag == [SSN, "张三", "", "1", "01", "110102", "19730521"]  # 4E: empty on a short name
        out = page.ok(
            "iReadCard", iType=3, iAuthType=1, pCardInfo=card_info, pFileAddr="3F00EF06|08|09|0A|0D|$"
        )
        assert fields(out) == [SSN, "张三", "1", "19730521"]
        # iAuthType 0: no external authentication, so no key for EF06 (-2201, as without a PSAM).
        assert page.code("iReadCard", iType=3, iAuthType=0, pCardInfo="", pFileAddr="3F00EF06|08|$") == -2201
        assert fields(
            page.ok("iReadCard", iType=3, iAuthType=0, pCardInfo="", pFileAddr="3F00EF05|07|$")
        ) == ["X00000019"]
        assert page.code("iReadCard", iType=3, iAuthType=1, pCardInfo="", pFileAddr="3F00EF99|08|$") == -14

        assert (
            page.ok(
                "iWriteCard",
                iType=3,
                pCardInfo=card_info,
                pFileAddr="3F00EF07|21|$",
                pWriteData="13911112222|",
            )
            == ""
        )
        assert fields(
            page.ok("iReadCard", iType=3, iAuthType=1, pCardInfo="", pFileAddr="3F00EF07|21|$")
        ) == ["13911112222"]
        assert (
            page.code(
                "iWriteCard",
                iType=3,
                pCardInfo=card_info,
                pFileAddr="3F00EF07|21|$",
                pWriteData="1" * 30 + "|",
            )
            == -42
        )

        step = page.ok("iReadCard_HSM_Step1", iType=3, iAuthType=1, pCardInfo="", pFileAddr="3F00EF06|08|$")
        assert fields(page.ok("iReadCard_HSM_Step2", pKey=module.process(step))) == [SSN]

        # A write of two records: one MAC request per record, Step2 repeated until the empty answer.
        step = page.ok(
            "iWriteCard_HSM_Step1",
            iType=3,
            pCardInfo=card_info,
            pFileAddr="3F00EF07|21|23|$",
            pWriteData="13700001111|100020|",
        )
        steps = 0
        while step:
            assert fields(step)[:2] == ["03", "0004"]  # AMK
            step = page.ok("iWriteCard_HSM_Step2", pKey=module.process(step))
            steps += 1
        assert steps == 2
        out = page.ok("iReadCard", iType=3, iAuthType=1, pCardInfo="", pFileAddr="3F00EF07|21|23|$")
        assert fields(out) == ["13700001111", "100020"]


def test_signature_key_reader_info_and_unsupported(svc: Service, insert: Insert) -> None:
    with counter(svc) as page:
        assert fields(page.ok("iGetReaderInfo")) == ["DEV-0001", "110102000001"]
        with insert(card_os(3)):
            (key,) = fields(page.ok("iReadSignatureKey", iType=3))
            assert len(key) == 130 and key.startswith("04") and HEX.match(key)
        with insert(card_os(2)):
            assert page.code("iReadSignatureKey", iType=3) < -20000  # gen 2 refuses the command (-SW)
        # Certificates go only to a card in personalisation (test_service_write_ca.py).
        with insert(card_os(3)):
            answer = page.call("iWriteCA", iType=3, pCardInfo="", pWriteData="AB|CD|EF|")
            assert answer["success"] == -27013 and answer["function"] == "iWriteCA"


def test_wallet_debit_and_records(svc: Service, insert: Insert) -> None:
    """iDoDebit / iReadDebitRecord over the transport wallet (amounts in fen),
    with the PSAM and, in steps, with the security module."""
    module = hsm()
    with insert(card_os(3, life_cycle=LifeCycle.ACTIVE)), counter(svc) as page:
        assert fields(page.ok("iReadDebitRecord", iType=3)) == ["0", "0"]
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="100|") == -1702  # balance 0
        loaded = svc.post("/wallet/load", {"amount": "20.00"})
        assert loaded.status_code == 200, loaded.text
        card_info = card_info_of(svc)
        out = fields(page.ok("iDoDebit", iType=3, pCardInfo=card_info, pPayInfo="350|20260301081500|"))
        amount, before, after, counter_no, terminal, moment, tac = out
        assert (amount, before, after) == ("350", "2000", "1650")
        assert terminal == "110102000001" and moment == "20260301081500" and len(tac) == 8 and HEX.match(tac)
        # The same purchase with the security module in steps: MAC1, then the MAC2 and TAC checks.
        request = page.ok("iDoDebit_HSM_Step1", iType=3, pCardInfo="", pPayInfo="150|")
        assert fields(request)[:2] == ["03", "0008"] and len(fields(request)) == 5  # PK: MAC1
        steps = 0
        while True:
            answer = page.call("iDoDebit_HSM_Step2", pKey=module.process(request))
            assert answer["success"] == 0, answer
            steps += 1
            parts = fields(answer["pOutInfo"])
            if len(parts) == 7 and parts[0] == "150":
                break
            request = answer["pOutInfo"]
            assert steps < 5
        assert steps == 3 and parts[1:3] == ["1650", "1500"] and int(parts[3]) == int(counter_no) + 1
        records = fields(page.ok("iReadDebitRecord", iType=3))
        assert records[:2] == ["1500", "3"]
        newest, older = records[2:7], records[7:12]
        assert newest[1:3] == ["150", parts[3]] and older[1] == "350" and older[4] == "20260301081500"
        load = records[12:17]  # the oldest record
        assert load[1] == "2000" and load[0] != newest[0] == older[0] and len(records) == 17
        # Bad pay information: no amount, not digits, a bad time, another card.
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="") == -14
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="1.50|") == -41
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="100|20261399000000|") == -41
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="1234567890|") == -42
        assert page.code("iDoDebit", iType=3, pCardInfo="", pPayInfo="0|") == -23
        other = "110102D1560000050000000000000099|X00000099|"
        assert page.code("iDoDebit", iType=3, pCardInfo=other, pPayInfo="100|") in (-20, -22)
        assert fields(page.ok("iReadDebitRecord", iType=3))[:2] == ["1500", "3"]


def test_malformed_messages(svc: Service) -> None:
    with counter(svc) as page:
        page.ws.send_text("{not json")
        assert page.ws.receive_json()["success"] == -14
        page.ws.send_text("[1, 2]")
        assert page.ws.receive_json()["success"] == -14
        page.ws.send_text('{"iType": 3}')
        assert page.ws.receive_json()["success"] == -14
        page.ws.send_bytes(b'{"function": "iGetReaderInfo"}')
        assert page.ws.receive_json()["success"] == 0
        unknown = page.call("iTeleport", iType=3)
        assert unknown["success"] == -13 and unknown["function"] == "iTeleport"
        assert page.code("iReadCardBas") == -14  # iType missing
        assert page.code("iReadCardBas", iType=9) == -14
        assert page.code("iReadCardBas", iType="three") == -14
        assert page.code("iReadCard", iType=3, iAuthType=1, pCardInfo="", pFileAddr="3F00EF06|" * 60) == -42
        page.ws.send_text("x" * 20000)
        assert page.ws.receive_json()["success"] == -14


def test_card_removed_mid_call(svc: Service, insert: Insert) -> None:
    card = PullingCard(card_os(3))
    with insert(card) as link, counter(svc) as page:
        card.arm(0x82)  # EXTERNAL AUTHENTICATE of the holder read
        answer = page.call("iReadCardBas", iType=3)
        assert answer["success"] == -2 and answer["pOutInfo"] == ""
        assert card.pulled and not link.inserted
        assert page.code("iReadCardBas", iType=3) == -2


def test_one_operation_per_card(make_service: MakeService, insert: Insert) -> None:
    module = hsm()
    impatient = make_service(service={"queue_wait_seconds": 0.3})
    with insert(card_os(3)):
        with counter(impatient) as page, counter(impatient) as other:
            request = page.ok("iReadCardBas_HSM_Step1", iType=3)  # holds the card until step 2
            busy = impatient.post("/card/basic")
            assert busy.status_code == 409 and busy.json()["error"] == "card_busy"
            assert busy.json()["national_code"] == "-1307"
            assert other.code("iReadCardBas", iType=3) == -1307
            assert fields(page.ok("iReadCardBas_HSM_Step2", pKey=module.process(request)))[1] == SSN
            # The caller moves on without step 2: the sequence is abandoned and the card freed.
            page.ok("iReadCardBas_HSM_Step1", iType=3)
            assert fields(page.ok("iReadCardBas", iType=3))[1] == SSN
            assert impatient.post("/card/basic").status_code == 200

        patient = make_service(service={"queue_wait_seconds": 60.0})  # a loaded CI machine is slow
        with counter(patient) as page:
            request = page.ok("iReadCardBas_HSM_Step1", iType=3)
            queued: dict[str, Any] = {}
            worker = threading.Thread(target=lambda: queued.setdefault("r", patient.post("/card/holder")))
            worker.start()
            time.sleep(0.3)
            assert worker.is_alive()  # waiting behind the sequence, never interleaved
            page.ok("iReadCardBas_HSM_Step2", pKey=module.process(request))
            worker.join(timeout=90)
            assert not worker.is_alive(), "the queued request never ended"
            assert queued["r"].status_code == 200 and queued["r"].json()["ssn"] == SSN


def test_connection_closed_mid_sequence_frees_the_card(svc: Service, insert: Insert) -> None:
    with insert(card_os(3)):
        with counter(svc) as page:
            page.ok("iReadCardBas_HSM_Step1", iType=3)
        assert svc.post("/card/basic").status_code == 200
