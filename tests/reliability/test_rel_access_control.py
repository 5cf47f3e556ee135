"""Access control, table-driven: every command against every file and key of
each profile, under every life-cycle state and security state, checked
against the oracle built from the profile data (rel_oracle.py,
data/access_rules.toml): the status word, the data returned and the exact
state change (persistent image and session).

Security states are reached with real APDUs (external authentication,
VERIFY, life-cycle commands with a valid MAC) or set in the image where a
state is a stored fact (PIN blocked, a key locked or on its last try).
``authenticated_then_*`` authenticate everything on an active card and then
block it in the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rel_cards import (
    clone_card,
    diff,
    external_auth_apdu,
    external_authenticate,
    get_challenge,
    make_image,
    sm_apdu,
    snapshot,
    tx,
    verify_apdu,
)
from rel_oracle import LIFE_CYCLE_APDUS, Probe, State, check, expect, probes, run_probe

from card_model.keys import KeyRole
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from emulator.card_os import CardOS

Setup = Callable[[CardOS], None]


def _auth(role: KeyRole) -> Setup:
    def run(card: CardOS) -> None:
        if card.profile.key_for_role(role) is not None:
            external_authenticate(card, role)

    return run


def _auth_failed(role: KeyRole) -> Setup:
    def run(card: CardOS) -> None:
        challenge = get_challenge(card, 8)
        if challenge is not None and card.profile.key_for_role(role) is not None:
            tx(card, external_auth_apdu(card.image, role.kid, challenge, good=False))

    return run


def _verify(card: CardOS) -> None:
    tx(card, verify_apdu(card.image.pin.value))


def _pin_tries(n: int) -> Setup:
    def run(card: CardOS) -> None:
        card.image.pin.tries_left = n

    return run


def _key_tries(role: KeyRole, n: int) -> Setup:
    def run(card: CardOS) -> None:
        spec = card.profile.key_for_role(role)
        if spec is not None:
            card.image.keys[spec.kid].tries_left = n

    return run


def _life_cycle_command(command: str) -> Setup:
    def run(card: CardOS) -> None:
        ins, p1, p2 = LIFE_CYCLE_APDUS[command]
        challenge = get_challenge(card, 4)
        assert challenge is not None
        _data, sw = tx(card, sm_apdu(card.image, KeyRole.AMK, 0x84, ins, p1, p2, b"", challenge))
        assert sw == 0x9000, f"{command}: {sw:04X}"

    return run


ALL = (_auth(KeyRole.RK), _auth(KeyRole.EAK), _verify)
SECURITY_STATES: dict[str, tuple[Setup, ...]] = {
    "fresh": (),
    "rk": (_auth(KeyRole.RK),),
    "eak": (_auth(KeyRole.EAK),),
    "rk_then_failed": (_auth(KeyRole.RK), _auth_failed(KeyRole.RK)),
    "pin_verified": (_verify,),
    "all": ALL,
    "pin_last_try": (_pin_tries(1),),
    "pin_blocked": (_pin_tries(0),),
    "rk_locked": (_key_tries(KeyRole.RK, 0),),
    "amk_last_try": (_key_tries(KeyRole.AMK, 1),),
    "amk_locked": (_key_tries(KeyRole.AMK, 0),),
    "prk_puk_locked": (_key_tries(KeyRole.PRK, 0), _key_tries(KeyRole.PUK, 0)),
}
# an authenticated session on an active card that is then blocked
BLOCKED_IN_SESSION: dict[LifeCycle, tuple[Setup, ...]] = {
    LifeCycle.TEMPORARILY_BLOCKED: (*ALL, _life_cycle_command("app_block_temporary")),
    LifeCycle.PERMANENTLY_BLOCKED: (*ALL, _life_cycle_command("app_block_permanent")),
    LifeCycle.CARD_BLOCKED: (*ALL, _life_cycle_command("card_block")),
}


@dataclass(frozen=True)
class Case:
    generation: int
    life_cycle: LifeCycle
    state: str
    setups: tuple[Setup, ...]
    start: LifeCycle

    def __str__(self) -> str:
        return f"gen{self.generation}-{self.life_cycle.label}-{self.state}"


def _cases() -> list[Case]:
    out = []
    for generation in (3, 2, 1):
        for life_cycle in LifeCycle:
            for name, setups in SECURITY_STATES.items():
                out.append(Case(generation, life_cycle, name, setups, life_cycle))
        for life_cycle, setups in BLOCKED_IN_SESSION.items():
            out.append(Case(generation, life_cycle, "authenticated_then_blocked", setups, LifeCycle.ACTIVE))
    return out


CASES = _cases()


def _base(case: Case) -> CardOS:
    card = CardOS(make_image(case.generation, case.start))
    for setup in case.setups:
        setup(card)
    assert card.image.life_cycle is case.life_cycle
    return card


def _run(case: Case) -> tuple[int, list[str]]:
    base = _base(case)
    profile = load_profile(base.image.profile)
    problems: list[str] = []
    count = 0
    before = snapshot(base)
    state = State(profile, before)
    for probe in probes(profile):
        card = clone_card(base)
        expected = expect(state, probe)
        data, sw = run_probe(card, probe)
        found = check(expected, data, sw, diff(before, snapshot(card)))
        count += 1
        if found:
            problems.append(f"{probe}: {'; '.join(found)}")
    return count, problems


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_command_against_the_profile(case: Case) -> None:
    count, problems = _run(case)
    assert count > 100
    assert not problems, f"{case}: {len(problems)} of {count} probes differ:\n" + "\n".join(problems[:25])


def test_the_oracle_is_not_trivially_permissive() -> None:
    """The same probes disagree with a card whose EF06 is readable by anyone:
    the table would catch an access condition the card forgot."""
    case = Case(3, LifeCycle.ACTIVE, "fresh", (), LifeCycle.ACTIVE)
    base = _base(case)
    profile = load_profile("gen3")
    probe = next(p for p in probes(profile) if p.name == "READ RECORD EF06/08")
    before = snapshot(base)
    expected = expect(State(profile, before), probe)
    assert expected.sws == frozenset({0x6982}) and expected.data == b""
    leaked = bytes((0x08, 18)) + b"110102197305211008"
    assert check(expected, leaked, 0x9000, {})
    assert not check(expected, b"", 0x6982, {})


def test_probe_count_covers_every_file_and_key() -> None:
    profile = load_profile("gen3")
    names = [p.name for p in probes(profile)]
    for spec in profile.files:
        assert any(spec.name in n for n in names)
    for kid in range(1, 11):
        assert f"EXTERNAL AUTHENTICATE {kid:02X} good" in names
    assert isinstance(next(iter(probes(profile))), Probe)
