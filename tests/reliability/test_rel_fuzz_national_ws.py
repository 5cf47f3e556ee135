"""Fuzzing the national interface end to end: the messages of
rel_fuzz.national_messages (known and unknown functions with arguments of
every type, raw text, bytes, deep nesting, byte-level mutations) sent over
the real WebSocket of the service process, a card in the reader.

Property: every message gets one JSON answer ``{"function", "success",
"pOutInfo", "message"}`` with an integer code, on a connection that stays
usable (a message over the 64 KiB frame limit is refused by closing with
1009 "message too big", as documented), and the service never fails internally (no InternalError answer, no
"unexpected failure" in its log).  The parser itself is fuzzed in
test_rel_fuzz_parsers.py; the HTTP API by schemathesis in
tests/service/test_service_schemathesis.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import given
from rel_fuzz import fuzz, national_messages
from rel_rig import Rig
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from card_model.demo import demo_card_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from terminal.service.errors import InternalError

SLOT = 48
FRAME_LIMIT = 65536  # uvicorn ws_max_size of terminal/service/server.py


class NationalClient:
    """One WebSocket connection to the national port, re-opened if the service closed it."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.stack = ExitStack()
        self.ws: ClientConnection | None = None
        self.reopened = 0
        self.sent = 0

    def ask(self, raw: str | bytes) -> dict[str, Any] | int:
        """The answer, or the close code when the service closed the connection."""
        if self.ws is None:
            self.ws = self.stack.enter_context(self.rig.service.national_ws())
        self.sent += 1
        try:
            self.ws.send(raw)
            answer: dict[str, Any] = json.loads(self.ws.recv(timeout=30))
        except ConnectionClosed as closed:
            self.ws = None
            self.reopened += 1
            return closed.rcvd.code if closed.rcvd is not None else -1
        return answer

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NationalClient]:
    # PIN entry (national iVerifyPIN / iChangePIN) goes to the PIN page: nobody
    # types, so its wait is kept short; the card answers for a silent holder.
    rig = Rig(tmp_path_factory.mktemp("national-ws"), extra={"pin": {"entry_timeout_seconds": 0.5}})
    rig.put(SLOT, CardOS(demo_card_image(3, life_cycle=LifeCycle.ACTIVE)))
    rig.wait_card(SLOT)
    made = NationalClient(rig)
    try:
        yield made
    finally:
        made.close()
        rig.close()
        log = rig.service.log_text()
        assert "unexpected failure" not in log, log[-2000:]


@fuzz(0.5)
@given(national_messages())
def test_national_websocket_answers_every_message(client: NationalClient, raw: str | bytes) -> None:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot go on the wire
    answer = client.ask(raw)
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > FRAME_LIMIT:
        assert answer == 1009, answer
        return
    assert isinstance(answer, dict), f"closed with {answer} after {size} bytes"
    assert set(answer) >= {"function", "success", "pOutInfo", "message"}, answer
    assert isinstance(answer["success"], int) and not isinstance(answer["success"], bool), answer
    assert answer["success"] <= 0 and answer["message"], answer
    assert answer["success"] != InternalError.national_code, answer
    assert isinstance(answer["pOutInfo"], str)


def test_the_connection_survives_the_fuzzing(client: NationalClient) -> None:
    """After the fuzz run (same module, same connection): a valid call still answers."""
    answer = client.ask(json.dumps({"function": "iReadCardBas", "iType": 3}))
    assert isinstance(answer, dict) and answer["success"] == 0, answer
    assert client.rig.service.alive
