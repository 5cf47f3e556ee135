"""Fuzzing the PSAM dispatcher (docs/card-os.md §9, §10.7).

Sequences of SELECT, READ BINARY, INIT FOR DESCRYPT, CIPHER (every P1),
GET RESPONSE, random APDUs and resets.  After every APDU: a documented
status word and no exception; no master key and no diversified card key
in any answer; INIT and CIPHER refused before the SSPSAM application is
selected; a CIPHER of the documented kinds answered only when the session
key has the usage (§9, data/access_rules.toml [psam]); and an answered
external-authentication cryptogram or MAC equals the one computed
independently from the demo key set with the session's key and factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st
from rel_cards import LocalMac
from rel_fuzz import byte, fuzz
from rel_oracle import rules

from apdu.status import lookup
from card_model.demo import demo_key_set, demo_psam_image
from card_model.keys import block_key
from card_model.psam_image import PsamImage, PsamKey
from emulator.psam import PsamCard
from sm_crypto.diversify import diversify

AID = bytes.fromhex("A00000000386980701")
IMAGE: PsamImage = demo_psam_image()
KIDS = sorted(IMAGE.keys)


def _cipher_usage() -> dict[int, str]:
    return {int(p1, 16): usage for p1, usage in rules()["psam"]["cipher"].items()}


@dataclass
class PsamTerminal:
    psam: PsamCard
    selected: bool = False
    master: PsamKey | None = None
    factor: bytes = b""
    problems: list[str] = field(default_factory=list)

    def send(self, raw: bytes) -> None:
        try:
            answer = self.psam.process(raw)
        except Exception as exc:
            self.problems.append(f"{raw.hex().upper()}: raised {type(exc).__name__}")
            return
        if len(answer) < 2:
            self.problems.append(f"{raw.hex().upper()}: {len(answer)}-byte answer")
            return
        sw = int.from_bytes(answer[-2:], "big")
        data = answer[:-2]
        label = raw.hex().upper()[:60]
        if lookup(sw).pattern.lower() == "xxxx":
            self.problems.append(f"{label}: undocumented status word {sw:04X}")
        self._no_key_in(data, label)
        self._track(raw, sw, data, label)

    def _no_key_in(self, data: bytes, label: str) -> None:
        if len(data) < 8:
            return
        for key in IMAGE.keys.values():
            if key.value in data:
                self.problems.append(f"{label}: master key {key.kid:02X} in the answer")
        if self.master is not None and len(self.factor) == 8:
            card_key = diversify(block_key(self.master.algorithm, self.master.value), self.factor)
            if card_key in data:
                self.problems.append(f"{label}: the diversified card key in the answer")

    def _track(self, raw: bytes, sw: int, data: bytes, label: str) -> None:
        if len(raw) < 4:
            return
        cla, ins, p1, p2 = raw[:4]
        body = raw[5 : 5 + raw[4]] if len(raw) > 5 else b""
        if (cla, ins) == (0x00, 0xA4) and p1 == 0x04:
            if sw == 0x9000 or sw & 0xFF00 == 0x6100:
                self.selected = body == AID or self.selected
            return
        if (cla, ins) == (0x80, 0x1A):
            if sw == 0x9000:
                if not self.selected:
                    self.problems.append(f"{label}: INIT answered 9000 before SELECT")
                self.master, self.factor = IMAGE.keys.get(p2), body
            return
        if (cla, ins) != (0x80, 0xFA) or (sw not in (0x9000,) and sw & 0xFF00 != 0x6100):
            return
        if not self.selected or self.master is None:
            self.problems.append(f"{label}: CIPHER answered without a selected application and a session key")
            return
        usage = _cipher_usage().get(p1)
        if usage is not None and usage not in self.master.usage:
            self.problems.append(f"{label}: CIPHER {p1:02X} ({usage}) answered with a key lacking the usage")
        if sw != 0x9000 or len(self.factor) != 8:
            return
        key = block_key(
            self.master.algorithm,
            demo_key_set().card_key(self.master.algorithm, self.master.role, self.factor),
        )
        if p1 == 0x00:
            expected = key.encrypt_ecb(body.ljust(key.block_size, b"\x00"))
            if data != expected:
                self.problems.append(f"{label}: external-auth cryptogram differs from the key set's")
        elif p1 == 0x05:
            expected = LocalMac(key).mac(body[16:], body[: key.block_size])[:4]
            if data != expected:
                self.problems.append(f"{label}: MAC differs from the key set's")


@st.composite
def psam_apdus(draw: st.DrawFn) -> bytes | str:
    kind = draw(
        st.sampled_from(
            ["select", "init", "init", "cipher", "cipher", "cipher", "read", "response", "random", "reset"]
        )
    )
    le = draw(st.none() | byte)
    tail = b"" if le is None else bytes((le,))
    if kind == "reset":
        return "reset"
    if kind == "select":
        if draw(st.integers(0, 9)) < 7:
            return bytes((0x00, 0xA4, 0x04, draw(st.sampled_from([0x00, 0x0C])), len(AID))) + AID + tail
        aid = draw(st.sampled_from([AID[:-1], AID + b"\x00", b"", draw(st.binary(max_size=16))]))
        body = bytes((len(aid),)) + aid if aid else b""
        return (
            bytes(
                (
                    0x00,
                    0xA4,
                    draw(st.sampled_from([0x04, 0x00, 0x02, draw(byte)])),
                    draw(st.sampled_from([0x00, 0x0C, draw(byte)])),
                )
            )
            + body
            + tail
        )
    if kind == "init":
        kid = draw(st.one_of(st.sampled_from(KIDS), byte))
        factor = draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=12)))
        body = bytes((len(factor),)) + factor if factor else b""
        return bytes((0x80, 0x1A, draw(st.sampled_from([0x00, draw(byte)])), kid)) + body + tail
    if kind == "cipher":
        p1 = draw(st.one_of(st.sampled_from([0x00, 0x05, 0x08, 0x10, 0x11, 0x20, 0x21, 0x22, 0x28]), byte))
        data = draw(
            st.one_of(
                st.binary(min_size=1, max_size=40),
                st.binary(min_size=4, max_size=16),
                st.binary(min_size=16, max_size=16),
                st.binary(min_size=32, max_size=32),
            )
        )
        return bytes((0x80, 0xFA, p1, draw(st.sampled_from([0x00, draw(byte)])), len(data))) + data + tail
    if kind == "read":
        return bytes((0x00, 0xB0, draw(st.sampled_from([0x96, 0x00, draw(byte)])), draw(byte))) + tail
    if kind == "response":
        return bytes((0x00, 0xC0, 0x00, 0x00)) + tail
    return draw(st.binary(min_size=0, max_size=30))


@fuzz(1.0)
@given(st.lists(psam_apdus(), min_size=1, max_size=20), st.integers(0, 9))
def test_psam_commands(steps: list[bytes | str], start: int) -> None:
    t = PsamTerminal(PsamCard(IMAGE))
    if start < 8:  # most sequences talk to a selected application
        t.send(bytes((0x00, 0xA4, 0x04, 0x0C, len(AID))) + AID)
    for step in steps:
        if step == "reset":
            t.psam.reset()
            t.selected, t.master, t.factor = False, None, b""
            continue
        assert isinstance(step, bytes)
        t.send(step)
    assert not t.problems, "\n".join(t.problems[:10])


def test_psam_refuses_cipher_with_the_wrong_usage() -> None:
    """Deterministic companion: every documented CIPHER kind with every master key."""
    for kid in KIDS:
        for p1, usage in _cipher_usage().items():
            psam = PsamCard(IMAGE)
            t = PsamTerminal(psam)
            t.send(bytes((0x00, 0xA4, 0x04, 0x0C, len(AID))) + AID)
            t.send(bytes((0x80, 0x1A, 0x00, kid, 0x08)) + bytes(range(8)))
            block = 16 if IMAGE.keys[kid].algorithm.value == "sm4" else 8
            data = {
                0x00: bytes(8),
                0x05: bytes(16) + b"\x84\x44\x00\x00\x04",
                0x08: bytes(2 * block),
                0x10: b"\x03",
            }[p1]
            raw = bytes((0x80, 0xFA, p1, 0x00, len(data))) + data + b"\x00"
            answer = psam.process(raw)
            sw = int.from_bytes(answer[-2:], "big")
            has = usage in IMAGE.keys[kid].usage
            t._track(raw, sw, answer[:-2], raw.hex())
            assert not t.problems, t.problems
            if not has:
                assert sw == 0x6985, (kid, p1, hex(sw))
            else:
                assert sw in (0x9000, 0x6300), (kid, p1, hex(sw))
