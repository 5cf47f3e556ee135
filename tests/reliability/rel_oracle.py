"""The access-control oracle: what the card must answer to a probe command in
a given state, derived from the card profile (file access conditions, key
uses, PIN rules) and ``data/access_rules.toml`` (docs/card-os.md written
down as data), never from the card OS code.

A :class:`Probe` knows how to build its APDU (fetching a challenge first
when it needs one) and which command, file, key and credential it carries.
:func:`expect` answers an :class:`Expect`: the acceptable status words, the
exact state changes (``rel_cards.diff`` paths -> new value) and, for reads,
the data.  Where docs/card-os.md does not fix the order of two checks, the
expectation accepts both status words; the state change is always exact.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from rel_cards import (
    SSSE_NAME,
    Snapshot,
    external_auth_apdu,
    get_challenge,
    key_for_card,
    key_path,
    record_path,
    sm_apdu,
    tx,
)

from apdu.elements import encode_pin
from card_model.image import CardImage
from card_model.keys import KeyRole, role_for_kid
from card_model.lifecycle import LifeCycle
from card_model.profile import AccessCondition, FileSpec, Profile, load_profile
from card_model.values import Ssn
from emulator.card_os import CardOS

DATA = Path(__file__).with_name("data")
ANY = object()  # an expected change whose new value is not predicted

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_INCOMPATIBLE_FILE = 0x6981
SW_SECURITY = 0x6982
SW_BLOCKED = 0x6983
SW_NO_CHALLENGE = 0x6984
SW_CONDITIONS = 0x6985
SW_SM_WRONG = 0x6988
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2 = 0x6A86
SW_NOT_FOUND = 0x6A88
SW_INS_UNKNOWN = 0x6D00
SW_VERIFY_FAILED = 0x63C0

Credential = Literal["good", "wrong_key", "plain", "no_challenge"]
NEW_PIN = "135790"
WRONG_PIN = "975318"


@cache
def rules() -> dict[str, Any]:
    return tomllib.loads((DATA / "access_rules.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Gate:
    refuse: int
    allow: frozenset[str] | None
    deny: frozenset[str]
    read_record_files: frozenset[str] | None

    def permits(self, command: str) -> bool:
        if self.allow is not None:
            return command in self.allow
        return command not in self.deny


@cache
def gate(life_cycle: int) -> Gate:
    row = rules()["gate"][f"{life_cycle:02X}"]
    allow = row.get("allow")
    files = row.get("read_record_files")
    return Gate(
        int(row["refuse"]),
        None if allow is None else frozenset(allow),
        frozenset(row.get("deny", ())),
        None if files is None else frozenset(files),
    )


@dataclass(frozen=True)
class Expect:
    """Acceptable SWs, exact state changes, expected data (None: not checked)."""

    sws: frozenset[int]
    changes: dict[str, Any] = field(default_factory=dict)
    data: bytes | None = b""
    data_check: Callable[[bytes], bool] | None = None

    def __repr__(self) -> str:
        sws = ",".join(f"{sw:04X}" for sw in sorted(self.sws))
        return f"Expect({sws}, changes={sorted(self.changes)})"


def _refuse(*sws: int) -> Expect:
    return Expect(frozenset(sws))


@dataclass(frozen=True)
class Probe:
    """One command against one file or key, with one credential."""

    name: str
    command: str
    file: FileSpec | None = None
    tag: int | None = None
    kid: int | None = None
    credential: Credential = "good"
    variant: str = ""

    def __str__(self) -> str:
        return self.name


# -- building the APDUs ----------------------------------------------------------------------


def _challenge_for(card: CardOS, credential: Credential) -> bytes:
    if credential == "no_challenge":
        return b"\x11\x22\x33\x44"
    challenge = get_challenge(card, 4)
    return challenge if challenge is not None else b"\x00\x00\x00\x00"


def _mac_apdu(
    card: CardOS, role: KeyRole, cla: int, ins: int, p1: int, p2: int, data: bytes, credential: Credential
) -> bytes:
    if credential == "plain":
        body = bytes((len(data),)) + data if data else b""
        return bytes((cla & ~0x04, ins, p1, p2)) + body
    challenge = _challenge_for(card, credential)
    use_role = role
    if credential == "wrong_key":
        use_role = KeyRole.PUK if role is not KeyRole.PUK else KeyRole.PRK
    return sm_apdu(card.image, use_role, cla, ins, p1, p2, data, challenge)


def new_record_value(profile: Profile, spec: FileSpec, tag: int, current: bytes | None) -> bytes:
    """A value for an UPDATE RECORD that differs from what the card holds."""
    record = spec.record(tag)
    assert record is not None
    length = 1 if record.variable else record.length
    for fill in (0x39, 0x38):
        value = bytes((fill,)) * length
        if value != current:
            return value
    raise AssertionError("no new value")


def build(probe: Probe, card: CardOS) -> bytes:
    """Send what the probe needs first (a GET CHALLENGE) and return its APDU."""
    image = card.image
    profile = card.profile
    c = probe.command
    f = probe.file
    if c == "select":
        assert f is not None
        return bytes((0x00, 0xA4, 0x00, 0x00, 0x02)) + f.fid.to_bytes(2, "big")
    if c == "read_record":
        assert f is not None and f.sfi is not None
        mode = 0x05 if probe.tag is None else 0x04
        return bytes((0x00, 0xB2, probe.tag or 0x01, (f.sfi << 3) | mode, 0x00))
    if c == "read_binary":
        assert f is not None and f.sfi is not None
        return bytes((0x00, 0xB0, 0x80 | f.sfi, 0x00, 0x10))
    if c == "update_record":
        assert f is not None and f.sfi is not None and probe.tag is not None
        current = image.record_files[f.fid].records.get(probe.tag)
        value = new_record_value(profile, f, probe.tag, current)
        data = bytes((probe.tag, len(value))) + value
        role = _update_role(profile, f)
        return _mac_apdu(card, role, 0x04, 0xDC, probe.tag, (f.sfi << 3) | 0x04, data, probe.credential)
    if c == "update_binary":
        assert f is not None and f.sfi is not None
        role = _update_role(profile, f)
        return _mac_apdu(card, role, 0x04, 0xD6, 0x80 | f.sfi, 0x00, BINARY_DATA, probe.credential)
    if c == "external_auth":
        assert probe.kid is not None
        challenge = get_challenge(card, min(8, profile.block_size)) or bytes(8)
        return external_auth_apdu(image, probe.kid, challenge, good=probe.credential == "good")
    if c == "internal_auth":
        assert probe.kid is not None
        if probe.variant == "sm2":
            return bytes((0x00, 0x88, 0x80, 0x00, 0x20)) + IA_RANDOM[:32] + b"\x00"
        return (
            bytes((0x00, 0x88, 0x00, probe.kid, profile.block_size))
            + IA_RANDOM[: profile.block_size]
            + b"\x00"
        )
    if c == "get_data":
        assert probe.tag is not None
        return bytes((0x80, 0xCA, 0xDF, probe.tag, 0x00))
    if c == "verify":
        pin_id = profile.pin.pin_id
        if probe.variant == "status":
            return bytes((0x00, 0x20, 0x00, pin_id))
        pin = image.pin.value if probe.variant == "correct" else WRONG_PIN
        return bytes((0x00, 0x20, 0x00, pin_id, 0x03)) + encode_pin(pin)
    if c == "change_pin":
        old = image.pin.value if probe.variant == "correct" else WRONG_PIN
        data = encode_pin(old) + b"\xff" + encode_pin(NEW_PIN)
        return bytes((0x80, 0x5E, 0x01, profile.pin.pin_id, len(data))) + data
    if c == "reload_pin":
        initial = probe.variant == "initial"
        pin = initial_pin(image) if initial else NEW_PIN
        p2 = profile.pin.pin_id | (0x80 if initial else 0x00)
        return _mac_apdu(card, KeyRole.PRK, 0x84, 0x5E, 0x00, p2, encode_pin(pin), probe.credential)
    if c == "unblock_pin":
        return _mac_apdu(card, KeyRole.PUK, 0x84, 0x24, 0x00, profile.pin.pin_id, b"", probe.credential)
    if c in LIFE_CYCLE_APDUS:
        ins, p1, p2 = LIFE_CYCLE_APDUS[c]
        return _mac_apdu(card, KeyRole.AMK, 0x84, ins, p1, p2, b"", probe.credential)
    if c == "generate_key_pair":
        # with Le: on T=0 a case-4 command without Le answers 61xx
        return _mac_apdu(card, KeyRole.AMK, 0x84, 0x4A, 0x00, 0x00, b"", probe.credential) + b"\x00"
    if c == "read_public_key":
        return bytes.fromhex("804A010041")
    if c == "select_mf":
        return bytes((0x00, 0xA4, 0x04, 0x0C, len(SSSE_NAME))) + SSSE_NAME
    raise AssertionError(f"unknown probe command {c}")


BINARY_DATA = bytes(range(0x30, 0x38))
IA_RANDOM = bytes(range(0x40, 0x60))
LIFE_CYCLE_APDUS = {
    "activate": (0x44, 0x00, 0x00),
    "personalise_done": (0x44, 0x01, 0x00),
    "app_block_temporary": (0x1E, 0x00, 0x00),
    "app_block_permanent": (0x1E, 0x00, 0x01),
    "app_unblock": (0x18, 0x00, 0x00),
    "card_block": (0x16, 0x00, 0x00),
}
SM2_COMMANDS = frozenset({"generate_key_pair", "read_public_key"})


def initial_pin(image: CardImage) -> str:
    holder = load_profile(image.profile).file_named("EF06")
    assert holder is not None
    raw = image.record_files[holder.fid].records[0x08]
    return Ssn(raw.decode("ascii").strip()).initial_pin


def _update_role(profile: Profile, spec: FileSpec) -> KeyRole:
    """The MAC key of a write (the same role run time and at personalisation
    on the built-in profiles)."""
    kid = spec.update.kid
    role = role_for_kid(kid) if kid is not None else None
    return role if role is not None else profile.personalisation.write_role


def _access_role(access: AccessCondition) -> KeyRole:
    role = role_for_kid(access.kid) if access.kid is not None else None
    assert role is not None
    return role


# -- the probes of a profile ---------------------------------------------------------------------

CREDENTIALS: tuple[Credential, ...] = ("good", "wrong_key", "plain", "no_challenge")
ALL_KIDS = tuple(range(0x01, 0x0C))  # 0B: no such key on any profile


def probes(profile: Profile) -> Iterator[Probe]:
    """Every command against every file and key of ``profile``."""
    for f in profile.files:
        yield Probe(f"SELECT {f.name}", "select", f)
        if f.kind == "records":
            for r in f.records:
                yield Probe(f"READ RECORD {f.name}/{r.tag:02X}", "read_record", f, r.tag)
            yield Probe(f"READ RECORD {f.name}/all", "read_record", f)
            for r in f.records:
                for cred in CREDENTIALS:
                    yield Probe(
                        f"UPDATE RECORD {f.name}/{r.tag:02X} {cred}",
                        "update_record",
                        f,
                        r.tag,
                        credential=cred,
                    )
            yield Probe(f"UPDATE BINARY {f.name} good", "update_binary", f)
        else:
            yield Probe(f"READ RECORD {f.name}/01", "read_record", f, 0x01)
            for cred in CREDENTIALS:
                yield Probe(f"UPDATE BINARY {f.name} {cred}", "update_binary", f, credential=cred)
        yield Probe(f"READ BINARY {f.name}", "read_binary", f)
    for kid in ALL_KIDS:
        yield Probe(f"EXTERNAL AUTHENTICATE {kid:02X} good", "external_auth", kid=kid)
        yield Probe(
            f"EXTERNAL AUTHENTICATE {kid:02X} wrong", "external_auth", kid=kid, credential="wrong_key"
        )
        yield Probe(f"INTERNAL AUTHENTICATE {kid:02X}", "internal_auth", kid=kid)
    yield Probe("INTERNAL AUTHENTICATE SM2", "internal_auth", kid=0, variant="sm2")
    for tag in (0x01, 0x02, 0x03, 0x04):
        yield Probe(f"GET DATA DF{tag:02X}", "get_data", tag=tag)
    for variant in ("correct", "wrong", "status"):
        yield Probe(f"VERIFY {variant}", "verify", variant=variant)
    for variant in ("correct", "wrong"):
        yield Probe(f"CHANGE PIN {variant}", "change_pin", variant=variant)
    for variant in ("initial", "chosen"):
        for cred in CREDENTIALS:
            yield Probe(f"RELOAD PIN {variant} {cred}", "reload_pin", credential=cred, variant=variant)
    for cred in CREDENTIALS:
        yield Probe(f"PIN UNBLOCK {cred}", "unblock_pin", credential=cred)
    for command in LIFE_CYCLE_APDUS:
        for cred in CREDENTIALS:
            yield Probe(f"{command} {cred}", command, credential=cred)
    for cred in CREDENTIALS:
        yield Probe(f"GENERATE KEY PAIR {cred}", "generate_key_pair", credential=cred)
    yield Probe("READ PUBLIC KEY", "read_public_key")
    yield Probe("SELECT SSSE", "select_mf")


# -- the expectations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The card state the oracle reasons on (from a snapshot)."""

    profile: Profile
    snap: Snapshot

    @property
    def life_cycle(self) -> int:
        return self.snap.life_cycle

    @property
    def image(self) -> dict[str, Any]:
        return self.snap.image

    def key(self, kid: int) -> dict[str, Any] | None:
        return next((k for k in self.image["keys"] if k["kid"] == kid), None)

    def tries(self, kid: int) -> int:
        key = self.key(kid)
        assert key is not None
        return int(key["tries_left"])

    @property
    def pin(self) -> dict[str, Any]:
        pin: dict[str, Any] = self.image["pin"]
        return pin

    def initial_pin(self) -> str:
        holder = self.profile.file_named("EF06")
        assert holder is not None
        raw = bytes.fromhex(self.image["record_files"][f"{holder.fid:04X}"]["08"])
        return Ssn(raw.decode("ascii").strip()).initial_pin

    def records(self, spec: FileSpec) -> dict[int, bytes]:
        table = self.image["record_files"][f"{spec.fid:04X}"]
        return {int(tag, 16): bytes.fromhex(value) for tag, value in table.items()}

    def binary(self, spec: FileSpec) -> bytes:
        return bytes.fromhex(self.image["binary_files"][f"{spec.fid:04X}"])

    def authenticated(self, role: KeyRole) -> bool:
        spec = self.profile.key_for_role(role)
        return spec is not None and spec.kid in self.snap.authenticated


def _access_ok(state: State, access: AccessCondition) -> bool:
    if access.kind == "always":
        return True
    if access.kind == "auth":
        return access.kid in state.snap.authenticated
    return False


def _key_check(state: State, kid: int, use: str) -> Expect | None:
    """Refusal for a key that does not exist, lacks ``use`` or is locked; None if usable."""
    spec = state.profile.key(kid)
    if spec is None or state.key(kid) is None:
        return _refuse(SW_NOT_FOUND)
    if use not in spec.uses:
        return _refuse(SW_CONDITIONS)
    if state.tries(kid) <= 0:
        return _refuse(SW_BLOCKED)
    return None


def _restore(state: State, kid: int) -> dict[str, Any]:
    key = state.key(kid)
    assert key is not None
    return {} if key["tries_left"] == key["try_limit"] else {key_path(kid): key["try_limit"]}


def _mac_result(state: State, probe: Probe, role: KeyRole) -> Expect | None:
    """The answer of the MAC check of an SM command; None when the MAC is good
    (the key counter then restored, see ``_mac_restore``)."""
    if probe.credential == "plain":
        return _refuse(SW_SECURITY)
    if probe.credential == "no_challenge":
        return _refuse(SW_NO_CHALLENGE)
    spec = state.profile.key_for_role(role)
    if spec is None:
        return _refuse(SW_NOT_FOUND)
    refused = _key_check(state, spec.kid, "mac")
    if refused is not None:
        return refused
    if probe.credential == "wrong_key":
        return Expect(frozenset({SW_SM_WRONG}), {key_path(spec.kid): state.tries(spec.kid) - 1})
    return None


def _mac_restore(state: State, role: KeyRole) -> dict[str, Any]:
    spec = state.profile.key_for_role(role)
    assert spec is not None
    return _restore(state, spec.kid)


def _gate_refusal(state: State, probe: Probe) -> Expect | None:
    g = gate(state.life_cycle)
    if not g.permits(probe.command):
        return _refuse(g.refuse)
    if probe.command == "read_record" and g.read_record_files is not None:
        assert probe.file is not None
        if probe.file.name not in g.read_record_files:
            return _refuse(g.refuse)
    return None


def expect(state: State, probe: Probe) -> Expect:
    """What the card must answer to ``probe`` in ``state``."""
    profile = state.profile
    c = probe.command
    if c in SM2_COMMANDS and not profile.sm2:
        return _refuse(SW_INS_UNKNOWN)
    if probe.credential == "plain" and c not in ("external_auth",):
        return _plain(state, c)
    if c == "select_mf":
        c_gate = _gate_refusal(state, Probe(probe.name, "select"))
        if c_gate is not None:
            return c_gate
        if state.life_cycle == LifeCycle.TEMPORARILY_BLOCKED:
            return _refuse(0x6283)
        return Expect(frozenset({SW_OK}))
    refused = _gate_refusal(state, probe)
    if refused is not None:
        return refused
    handler = _EXPECT[c]
    return handler(state, probe)


# The plain CLA of an SM command that is another command's CLA/INS: that
# command runs (its gate applies) and refuses the SM command's P1/P2.
PLAIN_ALIAS = {"reload_pin": "change_pin", "generate_key_pair": "read_public_key"}


def _plain(state: State, command: str) -> Expect:
    """An SM command sent without secure messaging (plain CLA)."""
    g = gate(state.life_cycle)
    alias = PLAIN_ALIAS.get(command)
    if alias is not None:
        return _refuse(g.refuse) if not g.permits(alias) else _refuse(SW_WRONG_P1P2)
    # refused as "security status not satisfied" before the life-cycle gate, or by it
    return _refuse(SW_SECURITY, g.refuse) if not g.permits(command) else _refuse(SW_SECURITY)


def _select(state: State, probe: Probe) -> Expect:
    return Expect(frozenset({SW_OK}))


def _read_record(state: State, probe: Probe) -> Expect:
    f = probe.file
    assert f is not None
    if f.kind != "records":
        return _refuse(SW_INCOMPATIBLE_FILE)
    if not _access_ok(state, f.read):
        return _refuse(SW_SECURITY)
    records = state.records(f)
    if probe.tag is not None:
        value = records.get(probe.tag)
        if value is None:
            return _refuse(SW_RECORD_NOT_FOUND)
        return Expect(frozenset({SW_OK}), data=bytes((probe.tag, len(value))) + value)
    out = b"".join(bytes((t, len(v))) + v for t, v in sorted(records.items()))
    if not out:
        return _refuse(SW_RECORD_NOT_FOUND)
    if len(out) > 256:
        return Expect(frozenset({0x6100 | ((len(out) - 256) & 0xFF)}), data=out[:256])
    return Expect(frozenset({SW_OK}), data=out)


def _read_binary(state: State, probe: Probe) -> Expect:
    f = probe.file
    assert f is not None
    if f.kind != "binary":
        return _refuse(SW_INCOMPATIBLE_FILE)
    if not _access_ok(state, f.read):
        return _refuse(SW_SECURITY)
    return Expect(frozenset({SW_OK}), data=state.binary(f)[:16])


def ticket_states() -> frozenset[int]:
    return frozenset(int(code, 16) for code in rules()["applications"]["ticket_write_states"])


def write_access(state: State, spec: FileSpec, tag: int | None = None) -> AccessCondition:
    """The access condition of a write: the file's update condition, or in the
    blank state the profile's personalisation rules (the write key's MAC;
    elements written at initialisation stay read-only)."""
    if state.life_cycle != LifeCycle.BLANK:
        return spec.update
    rules_ = state.profile.personalisation
    record = spec.record(tag) if tag is not None else None
    if record is not None and record.element in rules_.initialised:
        return AccessCondition("never")
    key = state.profile.key_for_role(rules_.write_role)
    return AccessCondition("issuance_sm", key.kid) if key is not None else AccessCondition("never")


def _update_record(state: State, probe: Probe) -> Expect:
    f = probe.file
    assert f is not None and probe.tag is not None
    ticket = state.profile.applications.park_ticket
    if ticket is not None and ticket.fid == f.fid and state.life_cycle not in ticket_states():
        return _refuse(SW_CONDITIONS)
    access = write_access(state, f, probe.tag)
    if access.kind == "never" or access.kind == "auth" or access.kind == "always":
        return _refuse(SW_SECURITY)
    if access.kind == "issuance_sm" and state.life_cycle != LifeCycle.BLANK:
        return _refuse(SW_CONDITIONS)
    role = _access_role(access)
    refused = _mac_result(state, probe, role)
    if refused is not None:
        return refused
    value = new_record_value(state.profile, f, probe.tag, state.records(f).get(probe.tag))
    return Expect(
        frozenset({SW_OK}),
        {record_path(f.fid, probe.tag): value.hex().upper(), **_mac_restore(state, role)},
    )


def _update_binary(state: State, probe: Probe) -> Expect:
    f = probe.file
    assert f is not None
    if f.kind != "binary":
        # the file kind and the SM condition are both wrong: either answer
        return _refuse(SW_INCOMPATIBLE_FILE, SW_SECURITY, SW_CONDITIONS)
    access = write_access(state, f)
    if access.kind in ("never", "auth", "always"):
        return _refuse(SW_SECURITY)
    if access.kind == "issuance_sm" and state.life_cycle != LifeCycle.BLANK:
        return _refuse(SW_CONDITIONS)
    role = _access_role(access)
    refused = _mac_result(state, probe, role)
    if refused is not None:
        return refused
    content = bytearray(state.binary(f))
    content[: len(BINARY_DATA)] = BINARY_DATA
    return Expect(
        frozenset({SW_OK}),
        {f"binary_files.{f.fid:04X}": bytes(content).hex().upper(), **_mac_restore(state, role)},
    )


def _external_auth(state: State, probe: Probe) -> Expect:
    kid = probe.kid
    assert kid is not None
    refused = _key_check(state, kid, "external_auth")
    if refused is not None:
        return refused
    auth = set(state.snap.authenticated)
    if probe.credential == "good":
        changes: dict[str, Any] = dict(_restore(state, kid))
        if kid not in auth:
            changes["session.authenticated"] = sorted(auth | {kid})
        return Expect(frozenset({SW_OK}), changes)
    left = state.tries(kid) - 1
    changes = {key_path(kid): left}
    if kid in auth:
        changes["session.authenticated"] = sorted(auth - {kid})
    return Expect(frozenset({SW_VERIFY_FAILED | left}), changes)


def _internal_auth(state: State, probe: Probe) -> Expect:
    if probe.variant == "sm2":
        if not state.profile.sm2:
            return _refuse(SW_WRONG_P1P2)
        if state.image["sm2"]["sign_private"] is None:
            return _refuse(SW_NOT_FOUND)
        return Expect(frozenset({SW_OK}), data=None, data_check=lambda d: len(d) == 64)
    kid = probe.kid
    assert kid is not None
    refused = _key_check(state, kid, "internal_auth")
    if refused is not None:
        return refused
    return Expect(frozenset({SW_OK}), data=None, data_check=_ia_check(state, kid))


def _ia_check(state: State, kid: int) -> Callable[[bytes], bool]:
    role = role_for_kid(kid)
    assert role is not None
    size = state.profile.block_size
    key = key_for_card(state.profile.name, bytes.fromhex(state.image["card_id"]), role)
    expected = key.encrypt_ecb(IA_RANDOM[:size])
    return lambda data: data == expected


def _get_data(state: State, probe: Probe) -> Expect:
    tag = probe.tag
    assert tag is not None
    condition = rules()["get_data"][f"DF{tag:02X}"]
    if condition != "always":
        role = KeyRole(condition.split(":", 1)[1])
        if not state.authenticated(role):
            return _refuse(SW_SECURITY)
    image = state.image
    if tag == 0x01:
        value = bytes((state.life_cycle,))
    elif tag == 0x02:
        pin = state.pin
        flags = (0x01 if pin["initial"] else 0) | (0x02 if state.snap.pin_verified else 0)
        value = bytes((pin["tries_left"], pin["try_limit"], flags))
    elif tag == 0x03:
        value = b"".join(bytes((k["kid"], k["tries_left"], k["try_limit"])) for k in image["keys"])
    else:
        major, minor = state.profile.version
        value = bytes((state.profile.generation, major, minor))
    return Expect(frozenset({SW_OK}), data=value)


def _pin_ok(state: State, changes: dict[str, Any]) -> dict[str, Any]:
    pin = state.pin
    if pin["tries_left"] != pin["try_limit"]:
        changes["pin.tries_left"] = pin["try_limit"]
    if not state.snap.pin_verified:
        changes["session.pin_verified"] = True
    return changes


def _pin_wrong(state: State) -> Expect:
    left = state.pin["tries_left"] - 1
    changes: dict[str, Any] = {"pin.tries_left": left}
    if state.snap.pin_verified:
        changes["session.pin_verified"] = False
    return Expect(frozenset({SW_VERIFY_FAILED | left}), changes)


def _verify(state: State, probe: Probe) -> Expect:
    pin = state.pin
    blocked = pin["tries_left"] <= 0
    if probe.variant == "status":
        if blocked:
            return _refuse(SW_BLOCKED)
        if state.snap.pin_verified:
            return Expect(frozenset({SW_OK}))
        return _refuse(SW_VERIFY_FAILED | pin["tries_left"])
    if blocked:
        return _refuse(SW_BLOCKED)
    if probe.variant == "correct":
        return Expect(frozenset({SW_OK}), _pin_ok(state, {}))
    return _pin_wrong(state)


def _change_pin(state: State, probe: Probe) -> Expect:
    pin = state.pin
    if pin["tries_left"] <= 0:
        return _refuse(SW_BLOCKED)
    if probe.variant != "correct":
        return _pin_wrong(state)
    changes = _pin_ok(state, {"pin.value": NEW_PIN})
    if pin["initial"]:
        changes["pin.initial"] = False
    return Expect(frozenset({SW_OK}), changes)


def _reload_pin(state: State, probe: Probe) -> Expect:
    refused = _mac_result(state, probe, KeyRole.PRK)
    if refused is not None:
        return refused
    pin = state.pin
    initial = probe.variant == "initial"
    target = state.initial_pin() if initial else NEW_PIN
    changes: dict[str, Any] = dict(_mac_restore(state, KeyRole.PRK))
    if pin["value"] != target:
        changes["pin.value"] = target
    if pin["initial"] != initial:
        changes["pin.initial"] = initial
    if pin["tries_left"] != pin["try_limit"]:
        changes["pin.tries_left"] = pin["try_limit"]
    if state.snap.pin_verified:
        changes["session.pin_verified"] = False
    return Expect(frozenset({SW_OK}), changes)


def _unblock_pin(state: State, probe: Probe) -> Expect:
    refused = _mac_result(state, probe, KeyRole.PUK)
    if refused is not None:
        return refused
    pin = state.pin
    changes: dict[str, Any] = dict(_mac_restore(state, KeyRole.PUK))
    if pin["tries_left"] != pin["try_limit"]:
        changes["pin.tries_left"] = pin["try_limit"]
    return Expect(frozenset({SW_OK}), changes)


def _life_cycle(state: State, probe: Probe) -> Expect:
    c = probe.command
    rule = rules()["transition"][c]
    here = f"{state.life_cycle:02X}"
    before_mac = rule.get("before_mac", {})
    if here in before_mac:
        return _refuse(int(before_mac[here]))
    refused = _mac_result(state, probe, KeyRole.AMK)
    if refused is not None:
        return refused
    restore = _mac_restore(state, KeyRole.AMK)
    allowed = here in rule["from"]
    if rule.get("needs_sm2_key") and state.profile.sm2 and state.image["sm2"]["sign_private"] is None:
        allowed = False
    if not allowed:
        return Expect(frozenset({int(rule["otherwise"])}), restore)
    to = rule["to"]
    blocked_from = state.image["blocked_from"]
    if to == "blocked_from":
        target = blocked_from if blocked_from is not None else int(LifeCycle.ACTIVE)
        new_blocked_from = None
    else:
        target = int(to, 16)
        new_blocked_from = state.life_cycle if c == "app_block_temporary" else None
    changes: dict[str, Any] = dict(restore)
    if target != state.life_cycle:
        changes["life_cycle"] = target
    if new_blocked_from != blocked_from:
        changes["blocked_from"] = new_blocked_from
    return Expect(frozenset({SW_OK}), changes)


def _generate_key_pair(state: State, probe: Probe) -> Expect:
    refused = _mac_result(state, probe, KeyRole.AMK)
    if refused is not None:
        return refused
    restore = _mac_restore(state, KeyRole.AMK)
    here = f"{state.life_cycle:02X}"
    if here not in rules()["transition"]["generate_key_pair"]["from"]:
        return Expect(frozenset({SW_CONDITIONS}), restore)
    return Expect(
        frozenset({SW_OK}), {"sm2.sign_private": ANY, **restore}, data=None, data_check=lambda d: len(d) == 65
    )


def _read_public_key(state: State, probe: Probe) -> Expect:
    if state.image["sm2"]["sign_private"] is None:
        return _refuse(SW_NOT_FOUND)
    return Expect(frozenset({SW_OK}), data=None, data_check=lambda d: len(d) == 65 and d[0] == 0x04)


_EXPECT: dict[str, Callable[[State, Probe], Expect]] = {
    "select": _select,
    "read_record": _read_record,
    "read_binary": _read_binary,
    "update_record": _update_record,
    "update_binary": _update_binary,
    "external_auth": _external_auth,
    "internal_auth": _internal_auth,
    "get_data": _get_data,
    "verify": _verify,
    "change_pin": _change_pin,
    "reload_pin": _reload_pin,
    "unblock_pin": _unblock_pin,
    "generate_key_pair": _generate_key_pair,
    "read_public_key": _read_public_key,
    **{name: _life_cycle for name in LIFE_CYCLE_APDUS},
}


def check(expected: Expect, data: bytes, sw: int, changes: dict[str, tuple[Any, Any]]) -> list[str]:
    """Differences between the card's answer and the expectation (empty: as expected)."""
    problems = []
    if sw not in expected.sws:
        problems.append(f"SW {sw:04X}, expected {'/'.join(f'{s:04X}' for s in sorted(expected.sws))}")
    if expected.data is not None and data != expected.data:
        problems.append(
            f"data {data[:24].hex().upper()} ({len(data)} bytes), expected {len(expected.data)} bytes"
        )
    if expected.data_check is not None and sw == SW_OK and not expected.data_check(data):
        problems.append(f"data {data[:24].hex().upper()} ({len(data)} bytes) fails its check")
    got = {path: new for path, (_, new) in changes.items()}
    want = expected.changes
    if set(got) != set(want):
        problems.append(f"state changed {sorted(got)}, expected {sorted(want)}")
    else:
        for path, value in want.items():
            if value is not ANY and _norm(got[path]) != _norm(value):
                problems.append(f"{path} = {got[path]!r}, expected {value!r}")
    return problems


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(value)
    return value


def run_probe(card: CardOS, probe: Probe) -> tuple[bytes, int]:
    """Build (GET CHALLENGE first when needed) and send the probe; its answer."""
    return tx(card, build(probe, card))
