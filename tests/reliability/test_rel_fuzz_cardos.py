"""Fuzzing the card OS dispatcher in every life-cycle and security state.

Each example starts a demo card (generation 1/2/3, contact or contactless,
any life-cycle state, PIN or a key on its last try or blocked) and sends a
sequence of APDUs: valid commands built live (challenges, authentications,
the right PIN, MAC-protected writes and life-cycle commands), the same with
byte-level mutations, replays of earlier APDUs, random APDUs over the known
CLA/INS pairs, fully random bytes, and resets.  After every APDU
(rel_invariants): a documented status word and no exception, no secret in
the answer, and no state change the APDU's real credentials do not justify
(e.g. a mutated MAC that the card accepted, a replayed cryptogram, a record
written without the key its access condition names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st
from rel_cards import (
    SSSE_NAME,
    clone_image,
    diff,
    external_auth_apdu,
    make_image,
    sm_apdu,
    snapshot,
    verify_apdu,
)
from rel_fuzz import byte, fuzz, mutated
from rel_invariants import answer_problems, credentials, violations
from rel_oracle import LIFE_CYCLE_APDUS, NEW_PIN, initial_pin

from apdu.elements import encode_pin
from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.card_os.tables import command_table

KNOWN = sorted(command_table())
VALID = (
    "get_challenge",
    "select_ssse",
    "select_ef",
    "read_record",
    "read_all",
    "read_binary",
    "ext_auth_rk",
    "ext_auth_eak",
    "verify",
    "verify_wrong",
    "change_pin",
    "internal_auth",
    "get_data",
    "update_ef07",
    "update_ef05",
    "update_binary",
    "reload_pin",
    "unblock_pin",
    *LIFE_CYCLE_APDUS,
    "generate_key_pair",
    "get_response",
)


@dataclass
class Terminal:
    """The fuzzer's side: what a terminal knows while it talks to the card."""

    card: CardOS
    challenge: bytes | None = None
    sent: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def send(self, raw: bytes, label: str) -> tuple[bytes, int]:
        card = self.card
        before = snapshot(card)
        creds = credentials(card, raw, self.challenge, card.image.pin.value)
        try:
            answer = card.process(raw)
        except Exception as exc:  # noqa: BLE001 - any exception is the finding
            self.problems.append(f"{label} {raw.hex().upper()}: raised {type(exc).__name__}: {exc}")
            return b"", 0
        after = snapshot(card)
        found = answer_problems(answer, card, before)
        found += violations(card, card.profile, before, after, diff(before, after), creds)
        if found:
            self.problems.append(f"{label} {raw.hex().upper()[:80]}: {'; '.join(found)}")
        sw = int.from_bytes(answer[-2:], "big") if len(answer) >= 2 else 0
        data = answer[:-2]
        is_challenge = len(raw) == 5 and raw[:4] == b"\x00\x84\x00\x00" and sw == 0x9000
        self.challenge = data if is_challenge else None
        self.sent.append(raw)
        return data, sw

    def fresh_challenge(self, length: int = 4) -> bytes:
        data, sw = self.send(bytes((0x00, 0x84, 0x00, 0x00, length)), "GET CHALLENGE")
        return data if sw == 0x9000 else b"\x00" * length


def build_valid(t: Terminal, name: str, pick: int) -> bytes:
    """A valid command (sending the GET CHALLENGE it needs first)."""
    card = t.card
    image = card.image
    profile = card.profile
    files = profile.files
    spec = files[pick % len(files)]
    if name == "get_challenge":
        return bytes((0x00, 0x84, 0x00, 0x00, (4, 8)[pick % 2]))
    if name == "select_ssse":
        return bytes((0x00, 0xA4, 0x04, 0x00, len(SSSE_NAME))) + SSSE_NAME
    if name == "select_ef":
        return bytes((0x00, 0xA4, 0x00, 0x00, 0x02)) + spec.fid.to_bytes(2, "big")
    if name in ("read_record", "read_all"):
        sfi = spec.sfi or 0
        return bytes((0x00, 0xB2, 0x01 + pick % 8, (sfi << 3) | (4 if name == "read_record" else 5), 0x00))
    if name == "read_binary":
        return bytes((0x00, 0xB0, 0x80 | (spec.sfi or 0), pick % 4, 0x00))
    if name in ("ext_auth_rk", "ext_auth_eak"):
        role = KeyRole.RK if name == "ext_auth_rk" else KeyRole.EAK
        challenge = t.fresh_challenge(8)
        return external_auth_apdu(image, role.kid, challenge)
    if name == "verify":
        return verify_apdu(image.pin.value)
    if name == "verify_wrong":
        return verify_apdu("975318")
    if name == "change_pin":
        data = encode_pin(image.pin.value) + b"\xff" + encode_pin(NEW_PIN if image.pin.value != NEW_PIN else "246801")
        return bytes((0x80, 0x5E, 0x01, 0x01, len(data))) + data
    if name == "internal_auth":
        size = profile.block_size
        return bytes((0x00, 0x88, 0x00, 0x01, size)) + bytes(range(size)) + b"\x00"
    if name == "get_data":
        return bytes((0x80, 0xCA, 0xDF, 1 + pick % 4, 0x00))
    if name == "get_response":
        return bytes((0x00, 0xC0, 0x00, 0x00, 0x00))
    challenge = t.fresh_challenge(4)
    if name == "update_ef07":
        record = bytes((0x21, 0x0B)) + b"13900000000"
        return sm_apdu(image, KeyRole.AMK, 0x04, 0xDC, 0x21, (7 << 3) | 4, record, challenge)
    if name == "update_ef05":
        record = bytes((0x07, 0x09)) + b"Z99999999"
        return sm_apdu(image, KeyRole.AMK, 0x04, 0xDC, 0x07, (5 << 3) | 4, record, challenge)
    if name == "update_binary":
        return sm_apdu(image, KeyRole.AMK, 0x04, 0xD6, 0x8D, 0x00, b"\x30\x82\x01\x00", challenge)
    if name == "reload_pin":
        try:
            pin = initial_pin(image)
        except Exception:  # noqa: BLE001 - a card whose SSN record was overwritten
            pin = "123456"
        return sm_apdu(image, KeyRole.PRK, 0x84, 0x5E, 0x00, 0x81, encode_pin(pin), challenge)
    if name == "unblock_pin":
        return sm_apdu(image, KeyRole.PUK, 0x84, 0x24, 0x00, 0x01, b"", challenge)
    if name == "generate_key_pair":
        return sm_apdu(image, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x00, b"", challenge) + b"\x00"
    ins, p1, p2 = LIFE_CYCLE_APDUS[name]
    return sm_apdu(image, KeyRole.AMK, 0x84, ins, p1, p2, b"", challenge)


@st.composite
def random_apdu(draw: st.DrawFn) -> bytes:
    cla, ins = draw(st.one_of(st.sampled_from(KNOWN), st.tuples(byte, byte)))
    p1 = draw(st.one_of(st.sampled_from([0x00, 0x01, 0x04, 0x80, 0x8D, 0x96]), byte))
    p2 = draw(st.one_of(st.sampled_from([0x00, 0x01, 0x04, 0x0C, 0x2C, 0x2D, 0x34, 0x81]), byte))
    data = draw(st.binary(max_size=40) | st.binary(min_size=250, max_size=300))
    le = draw(st.none() | byte | st.integers(0, 0xFFFF))
    body = b""
    if data and len(data) <= 255:
        body = bytes((len(data),)) + data
    elif data:
        body = b"\x00" + len(data).to_bytes(2, "big") + data
    if le is not None:
        body += le.to_bytes(2, "big") if le > 0xFF and data and len(data) > 255 else bytes((le & 0xFF,))
    return bytes((cla, ins, p1, p2)) + body


action = st.one_of(
    st.tuples(st.just("valid"), st.sampled_from(VALID), st.integers(0, 63)),
    st.tuples(st.just("mutate"), st.sampled_from(VALID), st.integers(0, 63)),
    st.tuples(st.just("random"), random_apdu(), st.just(0)),
    st.tuples(st.just("bytes"), st.binary(max_size=12), st.just(0)),
    st.tuples(st.just("replay"), st.just(""), st.integers(0, 63)),
    st.tuples(st.just("reset"), st.just(""), st.just(0)),
)


@st.composite
def starts(draw: st.DrawFn) -> CardOS:
    generation = draw(st.sampled_from([3, 2, 1]))
    life_cycle = draw(st.sampled_from(list(LifeCycle)))
    interface = "contactless" if generation == 3 and draw(st.booleans()) else "contact"
    image = clone_image(_base_image(generation, life_cycle))
    tweak = draw(st.sampled_from(["none", "pin_last", "pin_blocked", "rk_last", "amk_last", "amk_locked"]))
    if tweak == "pin_last":
        image.pin.tries_left = 1
    elif tweak == "pin_blocked":
        image.pin.tries_left = 0
    elif tweak in ("rk_last", "amk_last", "amk_locked"):
        kid = KeyRole.RK.kid if tweak == "rk_last" else KeyRole.AMK.kid
        if kid in image.keys:
            image.keys[kid].tries_left = 0 if tweak == "amk_locked" else 1
    return CardOS(image, interface=interface)  # type: ignore[arg-type]


_BASES: dict[tuple[int, LifeCycle], object] = {}


def _base_image(generation: int, life_cycle: LifeCycle):  # type: ignore[no-untyped-def]
    key = (generation, life_cycle)
    if key not in _BASES:
        _BASES[key] = make_image(generation, life_cycle)
    return _BASES[key]


@fuzz(1.0)
@given(starts(), st.lists(action, min_size=1, max_size=14), st.data())
def test_random_and_mutated_apdus_keep_the_access_rules(card: CardOS, actions: list[tuple[str, object, int]],
                                                          data: st.DataObject) -> None:
    t = Terminal(card)
    for kind, what, pick in actions:
        if kind == "reset":
            card.reset()
            t.challenge = None
            continue
        if kind == "replay":
            if t.sent:
                t.send(t.sent[pick % len(t.sent)], "replay")
            continue
        if kind == "random" or kind == "bytes":
            assert isinstance(what, bytes)
            t.send(what, kind)
            continue
        assert isinstance(what, str)
        raw = build_valid(t, what, pick)
        if kind == "mutate":
            raw = data.draw(mutated(st.just(raw)), label="mutated")
        t.send(raw, f"{kind} {what}")
    assert not t.problems, "\n".join(t.problems[:10])


def test_the_invariants_catch_a_forged_write() -> None:
    """Sanity check of the harness: a write the card took without a MAC shows up."""
    card = CardOS(make_image(3, LifeCycle.ACTIVE))
    t = Terminal(card)
    ef07 = card.profile.file_named("EF07")
    assert ef07 is not None
    before = snapshot(card)
    card.image.record_files[ef07.fid].records[0x21] = b"1".ljust(20, b" ")
    after = snapshot(card)
    from rel_invariants import credentials as creds_of

    creds = creds_of(card, bytes.fromhex("00DC213C0D210B3133393030303030303030"), None, card.image.pin.value)
    found = violations(card, card.profile, before, after, diff(before, after), creds)
    assert len(found) == 1 and found[0].startswith("record_files.EF07.21:")
    assert not t.problems
