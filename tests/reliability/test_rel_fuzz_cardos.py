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

import pytest
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
        except Exception as exc:
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
        data = (
            encode_pin(image.pin.value)
            + b"\xff"
            + encode_pin(NEW_PIN if image.pin.value != NEW_PIN else "246801")
        )
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
        except Exception:
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


KINDS = ["valid"] * 5 + ["mutate"] * 6 + ["random"] * 4 + ["bytes"] + ["replay"] * 3 + ["reset"]


@st.composite
def actions(draw: st.DrawFn) -> tuple[str, object, int]:
    kind = draw(st.sampled_from(KINDS))
    pick = draw(st.integers(0, 63))
    if kind in ("valid", "mutate"):
        return kind, draw(st.sampled_from(VALID)), pick
    if kind == "random":
        return kind, draw(random_apdu()), pick
    if kind == "bytes":
        return kind, draw(st.binary(max_size=12)), pick
    return kind, "", pick


# most commands run in 01 / 02: start there more often
LIFE_CYCLES = [LifeCycle.PERSONALISED, LifeCycle.ACTIVE] * 3 + list(LifeCycle)


@st.composite
def starts(draw: st.DrawFn, life_cycle: LifeCycle | None = None) -> CardOS:
    generation = draw(st.sampled_from([3, 2, 1]))
    if life_cycle is None:
        life_cycle = draw(st.sampled_from(LIFE_CYCLES))
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


@pytest.mark.parametrize("life_cycle", list(LifeCycle), ids=[lc.name.lower() for lc in LifeCycle])
@fuzz(1 / len(LifeCycle))
@given(st.lists(actions(), min_size=1, max_size=16), st.data())
def test_random_and_mutated_apdus_keep_the_access_rules(
    life_cycle: LifeCycle, actions: list[tuple[str, object, int]], data: st.DataObject
) -> None:
    """Every life-cycle state gets its own share of the examples (the card
    starts in it; the sequence may move it on)."""
    card = data.draw(starts(life_cycle), label="card")
    assert card.image.life_cycle is life_cycle or life_cycle is LifeCycle.TEMPORARILY_BLOCKED
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


SM_COMMANDS = (
    "update_ef07",
    "update_ef05",
    "update_binary",
    "reload_pin",
    "unblock_pin",
    *LIFE_CYCLE_APDUS,
    "generate_key_pair",
)


@st.composite
def forgeries(draw: st.DrawFn, raw: bytes, other_mac: bytes) -> bytes:
    """``raw`` (a MAC-protected command) with its MAC or data tampered with,
    its structure intact: what an attacker replaying or editing it sends."""
    how = draw(st.sampled_from(["mac_bit", "mac_byte", "data_bit", "header", "other_key", "truncate_mac"]))
    out = bytearray(raw)
    has_le = len(raw) > 5 and raw[4] + 5 < len(raw)
    end = len(out) - (1 if has_le else 0)
    if how == "mac_bit":
        i = draw(st.integers(end - 4, end - 1))
        out[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "mac_byte":
        i = draw(st.integers(end - 4, end - 1))
        out[i] = (out[i] + draw(st.integers(1, 255))) & 0xFF
    elif how == "data_bit" and end - 4 > 5:
        i = draw(st.integers(5, end - 5))
        out[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "header":
        i = draw(st.sampled_from([2, 3]))
        out[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "other_key":
        out[end - 4 : end] = other_mac
    else:
        out[4] -= 4
        del out[end - 4 : end]
    return bytes(out)


@fuzz(1.0)
@given(
    st.sampled_from([3, 2, 1]),
    st.sampled_from(list(LifeCycle)),
    st.sampled_from(SM_COMMANDS),
    st.integers(0, 63),
    st.data(),
)
def test_tampered_macs_never_change_the_card(
    generation: int, life_cycle: LifeCycle, name: str, pick: int, data: st.DataObject
) -> None:
    """A MAC-protected command edited after the MAC was made (MAC, data or
    P1/P2 changed, another key's MAC, MAC cut off) changes nothing but the
    key's try counter."""
    card = CardOS(clone_image(_base_image(generation, life_cycle)))
    t = Terminal(card)
    raw = build_valid(t, name, pick)
    other = sm_apdu(
        card.image,
        KeyRole.PUK if name != "unblock_pin" else KeyRole.PRK,
        raw[0],
        raw[1],
        raw[2],
        raw[3],
        raw[5 : 5 + raw[4] - 4] if len(raw) > 5 else b"",
        t.challenge or b"\0\0\0\0",
    )
    other_mac = other[5 + other[4] - 4 : 5 + other[4]]
    forged = data.draw(forgeries(raw, other_mac), label="forged")
    t.send(forged, f"forged {name}")
    assert not t.problems, "\n".join(t.problems)


@fuzz(0.5)
@given(
    st.sampled_from([3, 2, 1]),
    st.sampled_from([LifeCycle.PERSONALISED, LifeCycle.ACTIVE]),
    st.sampled_from((*SM_COMMANDS, "ext_auth_rk", "ext_auth_eak", "verify")),
    st.integers(0, 63),
)
def test_replayed_commands_are_refused(generation: int, life_cycle: LifeCycle, name: str, pick: int) -> None:
    """A command that carried a valid MAC or cryptogram, sent again after a new
    challenge (or with none), gains nothing."""
    card = CardOS(clone_image(_base_image(generation, life_cycle)))
    t = Terminal(card)
    raw = build_valid(t, name, pick)
    t.send(raw, f"first {name}")
    _, sw = t.send(raw, f"replay {name} at once")
    assert sw != 0x9000 or name == "verify", f"{name} replayed with the consumed challenge: {sw:04X}"
    card.reset()
    t.challenge = None
    t.send(raw, f"replay {name} without a challenge")
    t.fresh_challenge(4)
    t.send(raw, f"replay {name} after a new challenge")
    t.fresh_challenge(8)
    t.send(raw, f"replay {name} after a new 8-byte challenge")
    assert not t.problems, "\n".join(t.problems)


@st.composite
def reads(draw: st.DrawFn) -> bytes:
    """READ RECORD / READ BINARY / SELECT with any P1, P2 and Le, GET RESPONSE."""
    kind = draw(st.sampled_from(["record", "record", "binary", "select", "response"]))
    p1 = draw(st.one_of(st.sampled_from([0x01, 0x08, 0x09, 0x20, 0x4E, 0x80 | 6, 0x80 | 13]), byte))
    sfi = st.sampled_from([0, 5, 6, 7, 13, 14, 21, 24, 31])
    p2 = draw(st.one_of(st.tuples(sfi, st.sampled_from([4, 5])).map(lambda t: t[0] << 3 | t[1]), byte))
    le = draw(st.none() | byte)
    tail = b"" if le is None else bytes((le,))
    if kind == "record":
        return bytes((0x00, 0xB2, p1, p2)) + tail
    if kind == "binary":
        return bytes((0x00, 0xB0, p1, p2)) + tail
    if kind == "response":
        return bytes((0x00, 0xC0, 0x00, 0x00)) + tail
    fid = draw(
        st.sampled_from(
            [0x3F00, 0xEF05, 0xEF06, 0xEF07, 0xEF0D, 0xEF15, 0x0E02, 0x0F01, draw(st.integers(0, 0xFFFF))]
        )
    )
    return bytes(
        (
            0x00,
            0xA4,
            draw(st.sampled_from([0x00, 0x02, 0x04, p1])),
            draw(st.sampled_from([0x00, 0x0C, p2])),
            0x02,
        )
    ) + fid.to_bytes(2, "big")


@fuzz(1.0)
@given(
    starts(),
    st.lists(st.one_of(reads(), st.sampled_from(["auth_eak", "verify", "reset"])), min_size=1, max_size=20),
)
def test_reads_never_leak_holder_data_or_secrets(card: CardOS, steps: list[object]) -> None:
    """Any sequence of SELECT / READ RECORD / READ BINARY / GET RESPONSE, with
    other authentications in between but never the reading key: no SSN or
    name of EF06 (nor a key) in any answer."""
    t = Terminal(card)
    for step in steps:
        if step == "reset":
            card.reset()
            t.challenge = None
        elif step == "auth_eak":
            t.send(build_valid(t, "ext_auth_eak", 0), "EXTERNAL AUTHENTICATE EAK")
        elif step == "verify":
            t.send(build_valid(t, "verify", 0), "VERIFY")
        else:
            assert isinstance(step, bytes)
            t.send(step, "read")
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
