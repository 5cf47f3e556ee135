"""PC/SC return code mapping and context handling, without a running pcscd:
the pyscard functions are replaced by fakes (through ``apdu.pcsc.scard``, so
that apdu/pcsc.py stays the only importer of pyscard)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apdu import errors, pcsc
from apdu.pcsc import PcscTransport, error_for_pcsc

S: Any = getattr(pcsc, "scard")  # noqa: B009 - pyscard is only imported by apdu/pcsc.py


@pytest.mark.parametrize(
    ("name", "session", "klass", "code"),
    [
        ("SCARD_E_NO_SERVICE", False, errors.PcscUnavailableError, -11),
        ("SCARD_E_SERVICE_STOPPED", False, errors.PcscUnavailableError, -11),
        ("SCARD_E_NO_SMARTCARD", False, errors.NoCardError, -2),
        ("SCARD_W_REMOVED_CARD", False, errors.NoCardError, -2),
        ("SCARD_W_REMOVED_CARD", True, errors.CardRemovedError, -2),
        ("SCARD_W_RESET_CARD", True, errors.CardResetError, -11),
        ("SCARD_E_PROTO_MISMATCH", False, errors.TransportError, -11),
        ("SCARD_E_PROTO_MISMATCH", True, errors.CardResetError, -11),
        ("SCARD_W_UNPOWERED_CARD", False, errors.CardUnpoweredError, -3),
        ("SCARD_W_UNRESPONSIVE_CARD", False, errors.CardMuteError, -4),
        ("SCARD_E_SHARING_VIOLATION", False, errors.SharingViolationError, -11),
        ("SCARD_E_TIMEOUT", False, errors.ReaderTimeoutError, -4),
        ("SCARD_E_UNKNOWN_READER", False, errors.ReaderNotFoundError, -12),
        ("SCARD_E_READER_UNAVAILABLE", True, errors.ReaderNotFoundError, -12),
        ("SCARD_E_NO_READERS_AVAILABLE", False, errors.ReaderNotFoundError, -12),
        ("SCARD_F_COMM_ERROR", True, errors.TransportError, -11),
        ("SCARD_E_INSUFFICIENT_BUFFER", True, errors.ProtocolError, -1001),
    ],
)
def test_mapping(name: str, session: bool, klass: type, code: int) -> None:
    exc = error_for_pcsc(getattr(S, name), "op(reader)", session=session)
    assert type(exc) is klass
    assert exc.national_code == code
    assert name in str(exc) and "op(reader)" in str(exc)


def test_unknown_code() -> None:
    exc = error_for_pcsc(0x80100FFF, "op")
    assert type(exc) is errors.TransportError and "80100FFF" in str(exc)


def test_every_table_entry_names_a_real_code_and_class() -> None:
    from apdu._tables import load_table

    for name, row in load_table("pcsc_errors")["errors"].items():
        assert hasattr(S, name), name
        for key in ("class", "session"):
            if key in row:
                assert issubclass(getattr(errors, row[key]), errors.SscardError)


class FakeScard:
    """Replaces the pyscard calls pcsc.py uses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.contexts = 0
        self.released: list[int] = []
        self.list_results: list[tuple[int, list[str]]] = []
        self.connect_result: tuple[int, int, int] = (
            S.SCARD_S_SUCCESS,
            77,
            S.SCARD_PROTOCOL_T0,
        )
        self.transmit_results: list[tuple[int, list[int]]] = []
        self.transmitted: list[tuple[int, int, list[int]]] = []
        self.begin_result = S.SCARD_S_SUCCESS
        self.calls: list[str] = []
        self.requests: list[list[Any]] = []
        self.active: int | None = None
        self.establish_result = S.SCARD_S_SUCCESS
        for name in (
            "SCardEstablishContext",
            "SCardReleaseContext",
            "SCardListReaders",
            "SCardConnect",
            "SCardStatus",
            "SCardTransmit",
            "SCardBeginTransaction",
            "SCardEndTransaction",
            "SCardDisconnect",
            "SCardReconnect",
            "SCardGetStatusChange",
            "SCardCancel",
            "SCardControl",
        ):
            monkeypatch.setattr(S, name, getattr(self, name))
        monkeypatch.setattr(pcsc, "_monitor", pcsc._Context())
        monkeypatch.setattr(pcsc, "_query", pcsc._Context())
        monkeypatch.setattr(pcsc, "_pool", pcsc._ContextPool(pcsc._CONTEXT_POOL_SIZE))

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        self.contexts += 1
        self.calls.append("establish")
        return self.establish_result, 1000 + self.contexts

    def SCardReleaseContext(self, ctx: int) -> int:
        self.released.append(ctx)
        return int(S.SCARD_S_SUCCESS)

    def SCardListReaders(self, ctx: int, groups: list[str]) -> tuple[int, list[str]]:
        return self.list_results.pop(0)

    def SCardConnect(self, ctx: int, reader: str, share: int, protocols: int) -> tuple[int, int, int]:
        self.calls.append(f"connect share={share} protocols={protocols}")
        self.active = self.connect_result[2]
        return self.connect_result

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        return S.SCARD_S_SUCCESS, "r", 0x34, self.active or 0, [0x3B, 0x00]

    def SCardTransmit(self, card: int, pci: int, apdu: list[int]) -> tuple[int, list[int]]:
        self.transmitted.append((card, pci, apdu))
        return self.transmit_results.pop(0)

    def SCardBeginTransaction(self, card: int) -> int:
        self.calls.append("begin")
        return int(self.begin_result)

    def SCardEndTransaction(self, card: int, disposition: int) -> int:
        self.calls.append(f"end {disposition}")
        return int(S.SCARD_S_SUCCESS)

    def SCardControl(self, card: int, code: int, data: list[int]) -> tuple[int, list[int]]:
        self.calls.append(f"control {code}")
        return S.SCARD_S_SUCCESS, []

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        self.calls.append(f"disconnect {disposition}")
        return int(S.SCARD_S_SUCCESS)

    def SCardReconnect(self, card: int, share: int, protocols: int, init: int) -> tuple[int, int]:
        self.calls.append(f"reconnect {init}")
        self.active = S.SCARD_PROTOCOL_T1
        return S.SCARD_S_SUCCESS, S.SCARD_PROTOCOL_T1

    def SCardGetStatusChange(self, ctx: int, timeout: int, states: list[Any]) -> tuple[int, list[Any]]:
        self.calls.append(f"status_change {timeout}")
        self.requests.append(list(states))
        if timeout == 5:
            return S.SCARD_E_TIMEOUT, []
        return S.SCARD_S_SUCCESS, [
            (
                n,
                (S.SCARD_STATE_PRESENT | S.SCARD_STATE_CHANGED)
                if n != pcsc.PNP_NOTIFICATION
                else (S.SCARD_STATE_CHANGED | 0x20000),
                [0x3B, 0x00],
            )
            for n, _ in states
        ]

    def SCardCancel(self, ctx: int) -> int:
        self.calls.append("cancel")
        return int(S.SCARD_S_SUCCESS)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    return FakeScard(monkeypatch)


def test_list_readers_empty_is_not_an_error(fake: FakeScard) -> None:
    fake.list_results = [(S.SCARD_E_NO_READERS_AVAILABLE, [])]
    assert pcsc.list_readers() == []


def test_list_readers_reestablishes_after_service_restart(fake: FakeScard) -> None:
    fake.list_results = [
        (S.SCARD_E_NO_SERVICE, []),
        (S.SCARD_S_SUCCESS, ["Virtual PCD 00 00"]),
    ]
    assert pcsc.list_readers() == ["Virtual PCD 00 00"]
    assert fake.contexts == 2 and fake.released == [1001]


def test_list_readers_service_down(fake: FakeScard) -> None:
    fake.list_results = [(S.SCARD_E_NO_SERVICE, []), (S.SCARD_E_SERVICE_STOPPED, [])]
    with pytest.raises(errors.PcscUnavailableError):
        pcsc.list_readers()


def test_no_context_means_unavailable(fake: FakeScard) -> None:
    fake.establish_result = S.SCARD_E_NO_SERVICE
    with pytest.raises(errors.PcscUnavailableError) as info:
        pcsc.list_readers()
    assert info.value.national_code == -11


def test_transport_uses_the_pci_of_the_active_protocol(fake: FakeScard) -> None:
    t = PcscTransport("Virtual PCD 00 00")
    t.connect()
    assert t.protocol == "T0" and t.atr == b"\x3b\x00"
    fake.transmit_results = [(S.SCARD_S_SUCCESS, [0x90, 0x00])]
    assert t.transmit(b"\x00\xa4\x00\x00") == b"\x90\x00"
    assert fake.transmitted[0][1] == S.SCARD_PCI_T0
    assert any(
        c == f"connect share={S.SCARD_SHARE_SHARED} protocols={S.SCARD_PROTOCOL_T0 | S.SCARD_PROTOCOL_T1}"
        for c in fake.calls
    )
    t.reconnect(reset=True)
    assert str(t.protocol) == "T1" and f"reconnect {S.SCARD_RESET_CARD}" in fake.calls
    fake.transmit_results = [(S.SCARD_S_SUCCESS, [0x90, 0x00])]
    t.transmit(b"\x00\xa4\x00\x00")
    assert fake.transmitted[1][1] == S.SCARD_PCI_T1
    t.disconnect()
    assert f"disconnect {S.SCARD_RESET_CARD}" in fake.calls and not t.connected


def test_dispose_leave(fake: FakeScard) -> None:
    with PcscTransport("r", dispose="leave"):
        pass
    assert f"disconnect {S.SCARD_LEAVE_CARD}" in fake.calls
    with pytest.raises(errors.InvalidInput):
        PcscTransport("r", dispose="burn")  # type: ignore[arg-type]


def test_a_transport_reuses_the_context_of_the_one_before(fake: FakeScard) -> None:
    for _ in range(3):
        with PcscTransport("r"):
            pass
    assert fake.contexts == 1 and fake.released == []
    assert pcsc._pool.idle == 1


def test_idle_contexts_are_bounded(fake: FakeScard) -> None:
    transports = [PcscTransport(f"r{i}") for i in range(pcsc._CONTEXT_POOL_SIZE + 3)]
    for t in transports:
        t.connect()
    assert fake.contexts == pcsc._CONTEXT_POOL_SIZE + 3  # one each while in use at once
    for t in transports:
        t.disconnect()
    assert pcsc._pool.idle == pcsc._CONTEXT_POOL_SIZE and len(fake.released) == 3
    pcsc._pool.clear()
    assert pcsc._pool.idle == 0 and len(fake.released) == pcsc._CONTEXT_POOL_SIZE + 3


def test_a_failed_connection_releases_its_context(fake: FakeScard) -> None:
    fake.connect_result = (S.SCARD_E_NO_SMARTCARD, 0, 0)
    with pytest.raises(errors.NoCardError):
        PcscTransport("r").connect()
    assert fake.released == [1001] and pcsc._pool.idle == 0


def test_a_context_that_met_a_service_error_is_not_kept(fake: FakeScard) -> None:
    t = PcscTransport("r")
    t.connect()
    fake.transmit_results = [(S.SCARD_E_NO_SERVICE, [])]
    with pytest.raises(errors.PcscUnavailableError):
        t.transmit(b"\x00\xb0\x00\x00\x00")
    t.disconnect()
    assert fake.released == [1001] and pcsc._pool.idle == 0


def test_a_forked_child_keeps_none_of_the_parents_contexts(fake: FakeScard) -> None:
    with PcscTransport("r"):
        pass
    assert pcsc._pool.idle == 1
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool is empty, nothing released
        os._exit(0 if pcsc._pool.idle == 0 and fake.released == [] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pcsc._pool.idle == 1


@pytest.mark.parametrize(
    ("apdu", "leaves"),
    [
        ("00A4040010", True),  # SELECT
        ("01A4040010", True),  # SELECT on logical channel 1
        ("00B0850000", True),  # READ BINARY
        ("00B2010500", True),  # READ RECORD
        ("00C0000020", True),  # GET RESPONSE
        ("80CA9F7900", True),  # GET DATA
        ("0088000108", True),  # INTERNAL AUTHENTICATE
        ("0C B0 85 00 00", False),  # secure messaging
        ("0020000003", False),  # VERIFY
        ("0082000108", False),  # EXTERNAL AUTHENTICATE
        ("0084000008", False),  # GET CHALLENGE
        ("00D6850001", False),  # UPDATE BINARY
        ("8088000108", False),  # INTERNAL AUTHENTICATE with a proprietary class
        ("00A4", False),  # too short to be a command
    ],
)
def test_commands_that_leave_the_card_as_found(apdu: str, leaves: bool) -> None:
    assert pcsc.leaves_state(bytes.fromhex(apdu)) is leaves


def test_reset_if_changed_resets_only_after_a_changing_command(fake: FakeScard) -> None:
    def session(*apdus: str, control: int | None = None) -> str:
        fake.calls.clear()
        with PcscTransport("r", dispose="reset_if_changed") as t:
            for apdu in apdus:
                fake.transmit_results.append((S.SCARD_S_SUCCESS, [0x90, 0x00]))
                t.transmit(bytes.fromhex(apdu))
            if control is not None:
                t.control(control)
        return fake.calls[-1]

    leave, reset = f"disconnect {S.SCARD_LEAVE_CARD}", f"disconnect {S.SCARD_RESET_CARD}"
    assert session() == leave
    assert session("00A4040010", "00B2010500") == leave
    assert session("00A4040010", "0020000003", "00B2010500") == reset
    assert session("00A4040010") == leave  # each connection starts afresh
    assert session(control=pcsc.control_code(pcsc.CM_IOCTL_GET_FEATURE_REQUEST)) == leave
    assert session(control=pcsc.control_code(3401)) == reset  # e.g. a PIN pad's VERIFY


def test_removed_card_during_transmit(fake: FakeScard) -> None:
    t = PcscTransport("r")
    t.connect()
    fake.transmit_results = [(S.SCARD_W_REMOVED_CARD, [])]
    with pytest.raises(errors.CardRemovedError):
        t.transmit(b"\x00\xb0\x00\x00\x00")
    assert not t.connected
    with pytest.raises(errors.NoCardError):
        t.transmit(b"\x00\xb0\x00\x00\x00")


@pytest.mark.parametrize("code", ["SCARD_W_RESET_CARD", "SCARD_E_PROTO_MISMATCH"])
def test_reset_card_during_transmit_keeps_the_handle(fake: FakeScard, code: str) -> None:
    t = PcscTransport("r")
    t.connect()
    fake.transmit_results = [(getattr(S, code), [])]
    with pytest.raises(errors.CardResetError):
        t.transmit(b"\x00\xb0\x00\x00\x00")
    assert t.connected  # reconnect() recovers


@pytest.mark.parametrize(
    ("name", "klass"),
    [
        ("SCARD_E_NO_SMARTCARD", errors.NoCardError),
        ("SCARD_W_UNRESPONSIVE_CARD", errors.CardMuteError),
        ("SCARD_W_UNPOWERED_CARD", errors.CardUnpoweredError),
        ("SCARD_E_SHARING_VIOLATION", errors.SharingViolationError),
        ("SCARD_E_UNKNOWN_READER", errors.ReaderNotFoundError),
    ],
)
def test_connect_errors(fake: FakeScard, name: str, klass: type) -> None:
    fake.connect_result = (getattr(S, name), 0, 0)
    with pytest.raises(klass):
        PcscTransport("r").connect()


def test_connect_after_service_restart(fake: FakeScard, monkeypatch: pytest.MonkeyPatch) -> None:
    results = [
        (S.SCARD_E_NO_SERVICE, 0, 0),
        (S.SCARD_S_SUCCESS, 5, S.SCARD_PROTOCOL_T1),
    ]

    def connect(*args: Any) -> tuple[int, int, int]:
        fake.connect_result = results.pop(0)
        fake.active = fake.connect_result[2]
        return fake.connect_result

    monkeypatch.setattr(S, "SCardConnect", connect)
    t = PcscTransport("r")
    t.connect()
    assert t.connected and fake.contexts == 2


def test_transaction_is_reentrant(fake: FakeScard) -> None:
    t = PcscTransport("r")
    t.connect()
    with t.transaction(), t.transaction():
        pass
    assert fake.calls.count("begin") == 1
    assert fake.calls.count(f"end {S.SCARD_LEAVE_CARD}") == 1


def test_transaction_begin_after_reset(fake: FakeScard) -> None:
    t = PcscTransport("r")
    t.connect()
    fake.begin_result = S.SCARD_W_RESET_CARD
    with pytest.raises(errors.CardResetError), t.transaction():
        pass


def test_protocol_comes_from_connect_not_from_a_stale_status(
    fake: FakeScard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCardStatus may answer another thread's older snapshot (protocol 0,
    no ATR yet): the session keeps SCardConnect's protocol and reads the ATR again."""
    answers = [
        (S.SCARD_S_SUCCESS, "r", 0x10034, 0, []),
        (S.SCARD_S_SUCCESS, "r", 0x10034, 0, [0x3B, 0x01]),
    ]
    monkeypatch.setattr(S, "SCardStatus", lambda card: answers.pop(0))
    t = PcscTransport("r")
    t.connect()
    assert t.protocol == "T0" and t.atr == b"\x3b\x01" and not answers
    answers.extend([(S.SCARD_S_SUCCESS, "r", 0x34, 0, [])] * 3)
    with pytest.raises(errors.CardUnpoweredError):
        t.reconnect(reset=True)


def test_not_connected(fake: FakeScard) -> None:
    t = PcscTransport("r")
    for action in (
        lambda: t.atr,
        lambda: t.protocol,
        lambda: t.transmit(b"\x00\x00\x00\x00"),
    ):
        with pytest.raises(errors.NoCardError):
            action()


def test_reader_states_and_wait(fake: FakeScard) -> None:
    states = pcsc.reader_states(["a", "b"])
    assert [s.name for s in states] == ["a", "b"]
    assert states[0].present and states[0].changed and not states[0].mute and states[0].atr == b"\x3b\x00"
    change = pcsc.wait_for_change(states, 100, pnp_state=0x10000)
    assert change is not None and change.readers_changed and change.pnp_state == 0x20000
    assert len(change.states) == 2
    assert fake.requests[-1] == [
        ("a", S.SCARD_STATE_PRESENT),
        ("b", S.SCARD_STATE_PRESENT),
        (pcsc.PNP_NOTIFICATION, 0x10000),
    ]
    assert pcsc.wait_for_change(states, 5) is None
    pcsc.cancel()
    assert "cancel" in fake.calls


def test_pcscd_not_running_is_pcsc_unavailable(tmp_path: Path) -> None:
    """Real pyscard/libpcsclite pointed at a socket nobody listens on."""
    code = (
        "from apdu import pcsc\n"
        "try:\n"
        "    pcsc.list_readers()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.national_code)\n"
    )
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "absent.comm"))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == ["PcscUnavailableError", "-11"]
