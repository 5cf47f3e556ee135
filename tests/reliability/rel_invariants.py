"""The security invariants the card fuzzer checks after every APDU.

The fuzzer knows what a terminal would know: the challenge the card gave
to the previous command, the card keys (diversified from the demo masters)
and the holder's PIN.  From that it decides which credentials an APDU
really carries (:class:`Credentials`) and then allows only the state
changes those credentials and the access rules (rel_oracle) permit:

* life cycle: a life-cycle command with a valid AMK MAC, along a transition
  of data/access_rules.toml;
* records / binary files: UPDATE RECORD / BINARY with a valid MAC of the key
  the write access names, in a state where the access allows the write;
* PIN value, "initial" flag, try counter going up: the right PIN, or a valid
  PRK / PUK MAC (or WRITE KEY with the transport key in the blank state);
* a key's try counter going up: a valid MAC or cryptogram of that key;
* keys, SM2 keys: personalisation (blank state, transport / write key MAC);
* session: an authentication only with the right cryptogram, "PIN
  verified" only with the right PIN;
* counters may go down by one per APDU (a failed attempt), nothing else.

Answers: two status bytes at least, a documented status word, and no secret
in the data (card keys, the PIN, SM2 private keys; the holder's SSN and
name only after the reading-key authentication the profile asks for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rel_cards import LocalMac, Snapshot, key_for_card
from rel_oracle import State, rules, ticket_states, write_access

from apdu.command import CommandApdu
from apdu.elements import encode_pin
from apdu.errors import ProtocolError, SecureMessagingError
from apdu.sm import iv_from_challenge, verify_command_mac
from apdu.status import lookup
from card_model.keys import KeyRole, role_for_kid
from card_model.lifecycle import LifeCycle
from card_model.profile import Profile
from emulator.card_os import CardOS

LIFE_CYCLE_BY_APDU = {
    (0x44, 0x00, 0x00): "activate",
    (0x44, 0x01, 0x00): "personalise_done",
    (0x1E, 0x00, 0x00): "app_block_temporary",
    (0x1E, 0x00, 0x01): "app_block_permanent",
    (0x18, 0x00, 0x00): "app_unblock",
    (0x16, 0x00, 0x00): "card_block",
}


@dataclass(frozen=True)
class Credentials:
    """What an APDU proves, judged by the terminal-side knowledge."""

    command: CommandApdu | None
    mac_roles: frozenset[KeyRole]
    cryptogram_kid: int | None
    right_pin: bool

    @property
    def ins(self) -> int | None:
        return None if self.command is None else self.command.ins


def credentials(card: CardOS, raw: bytes, challenge: bytes | None, pin: str) -> Credentials:
    try:
        cmd = CommandApdu.decode(raw)
    except ProtocolError:
        return Credentials(None, frozenset(), None, False)
    profile = card.profile
    card_id = card.image.card_id
    roles: set[KeyRole] = set()
    kid = None
    if challenge is not None:
        iv = iv_from_challenge(challenge, profile.block_size)
        if cmd.secure_messaging and len(cmd.data) >= 4:
            for spec in profile.keys:
                try:
                    verify_command_mac(cmd, iv, LocalMac(key_for_card(profile.name, card_id, spec.role)))
                except (SecureMessagingError, ProtocolError):
                    continue
                roles.add(spec.role)
        if cmd.cla == 0x00 and cmd.ins == 0x82 and cmd.p1 == 0x00:
            role = role_for_kid(cmd.p2)
            if role is not None and profile.key_for_role(role) is not None:
                expected = key_for_card(profile.name, card_id, role).encrypt_ecb(iv)
                if cmd.data == expected:
                    kid = cmd.p2
    block = encode_pin(pin)
    right_pin = (cmd.ins == 0x20 and cmd.data == block) or (
        cmd.cla == 0x80 and cmd.ins == 0x5E and cmd.data.startswith(block + b"\xff")
    )
    return Credentials(cmd, frozenset(roles), kid, right_pin)


def _role(profile: Profile, kid: int | None) -> KeyRole | None:
    role = role_for_kid(kid) if kid is not None else None
    return role if role is not None and profile.key_for_role(role) is not None else None


def _transition_ok(cmd: CommandApdu, before: int, after: int, blocked_from: int | None) -> bool:
    name = LIFE_CYCLE_BY_APDU.get((cmd.ins, cmd.p1, cmd.p2))
    if name is None:
        return False
    rule = rules()["transition"][name]
    if f"{before:02X}" not in rule["from"]:
        return False
    to = rule["to"]
    target = (
        (blocked_from if blocked_from is not None else int(LifeCycle.ACTIVE))
        if to == "blocked_from"
        else int(to, 16)
    )
    return after == target


def violations(
    card: CardOS,
    profile: Profile,
    before: Snapshot,
    after: Snapshot,
    changes: dict[str, tuple[Any, Any]],
    creds: Credentials,
) -> list[str]:
    """State changes that ``creds`` do not justify."""
    out: list[str] = []
    cmd = creds.command
    ins = creds.ins
    sm = creds.mac_roles
    state = State(profile, before)
    blank = before.life_cycle == LifeCycle.BLANK
    write_role = profile.personalisation.write_role
    transport_role = profile.personalisation.transport_role
    personalising = blank and ins == 0xD4 and transport_role in sm
    for path, (old, new) in changes.items():
        ok = False
        if path in ("life_cycle", "blocked_from"):
            ok = (
                cmd is not None
                and KeyRole.AMK in sm
                and _transition_ok(cmd, before.life_cycle, after.life_cycle, before.image["blocked_from"])
            )
        elif path.startswith("record_files."):
            fid = int(path.split(".")[1], 16)
            tag = int(path.split(".")[2], 16)
            spec = profile.file(fid)
            if cmd is not None and ins == 0xDC and spec is not None and cmd.p1 == tag:
                access = write_access(state, spec, tag)
                ticket = profile.applications.park_ticket
                ticket_ok = ticket is None or ticket.fid != fid or before.life_cycle in ticket_states()
                ok = (
                    access.kind in ("sm", "issuance_sm")
                    and _role(profile, access.kid) in sm
                    and ticket_ok
                    and (access.kind == "sm" or blank)
                )
        elif path.startswith("binary_files."):
            ok = cmd is not None and ins == 0xD6 and blank and write_role in sm
        elif path == "pin.tries_left":
            if isinstance(old, int) and isinstance(new, int) and new == old - 1:
                ok = ins in (0x20, 0x5E)
            else:
                ok = (
                    creds.right_pin
                    or (ins == 0x5E and KeyRole.PRK in sm)
                    or (ins == 0x24 and KeyRole.PUK in sm)
                    or personalising
                )
        elif path in ("pin.value", "pin.initial"):
            ok = (ins == 0x5E and (creds.right_pin or KeyRole.PRK in sm)) or personalising
        elif path == "pin.try_limit":
            ok = personalising
        elif path.startswith("keys["):
            kid = int(path[5 : path.index("]")])
            role = role_for_kid(kid)
            if path.endswith(".tries_left") and isinstance(old, int) and isinstance(new, int):
                ok = new == old - 1 or (role in sm) or creds.cryptogram_kid == kid or personalising
            else:
                ok = personalising
        elif path.startswith("sm2."):
            ok = blank and ((ins == 0x4A and write_role in sm) or personalising)
        elif path == "session.authenticated":
            gained = set(new) - set(old)
            ok = not gained or gained == {creds.cryptogram_kid}
        elif path == "session.pin_verified":
            ok = (not new) or creds.right_pin
        if not ok:
            out.append(f"{path}: {_short(old)} -> {_short(new)}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def answer_problems(answer: bytes, card: CardOS, before: Snapshot) -> list[str]:
    """A proper status word, and no secret in the data."""
    if len(answer) < 2:
        return [f"answer of {len(answer)} bytes"]
    sw = int.from_bytes(answer[-2:], "big")
    problems = []
    if lookup(sw).pattern.lower() == "xxxx":
        problems.append(f"undocumented status word {sw:04X}")
    data = answer[:-2]
    if len(data) < 3:
        return problems
    image = before.image
    for key in image["keys"]:
        if bytes.fromhex(key["value"]) in data:
            problems.append(f"key {key['kid']} in the answer")
    for name in ("sign_private", "encrypt_private"):
        value = image["sm2"][name]
        if value is not None and bytes.fromhex(value) in data:
            problems.append(f"SM2 {name} key in the answer")
    holder = card.profile.file_named("EF06")
    if holder is not None and holder.read.kind == "auth" and holder.read.kid not in before.authenticated:
        records = image["record_files"][f"{holder.fid:04X}"]
        for tag in ("08", "09"):
            value = records.get(tag)
            if value and bytes.fromhex(value).rstrip(b" ") in data:
                problems.append(f"EF06 record {tag} answered without the reading key")
    return problems
