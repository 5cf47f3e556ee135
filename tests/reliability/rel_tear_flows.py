"""The writing flows of the tearing campaign (rel_tear.TearFlow each).

Starting states are made through the flows themselves (a PIN changed and
then blocked by three wrong tries, an active card with money on it), so
each flow starts where a counter would meet it.  Values (PINs, amounts,
records) come from data/tear_flows.toml.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from rel_tear import State, TearFlow, psam_source, session_on

from apdu.errors import PinError
from card_model.demo import demo_card_image, demo_holder
from card_model.lifecycle import LifeCycle
from card_model.values import Ssn
from emulator.card_os import CardOS
from terminal import flows
from terminal.flows import ticket, wallet
from terminal.journal_hook import MemoryJournal
from terminal.session import CardSession

DATA = Path(__file__).parent / "data" / "tear_flows.toml"


@cache
def values() -> dict[str, Any]:
    with DATA.open("rb") as handle:
        return tomllib.load(handle)


def _v(name: str) -> Any:
    return values()["values"][name]


def _now() -> dt.datetime:
    return dt.datetime.fromisoformat(_v("now"))


def _card(generation: int, life_cycle: LifeCycle, *steps: Callable[[CardSession], object]) -> CardOS:
    card = CardOS(demo_card_image(generation, life_cycle=life_cycle))
    if steps:
        session, _ = session_on(card, psam_source(), MemoryJournal())
        for step in steps:
            step(session)
    return card


def initial_pin(generation: int) -> str:
    """The demo holder's initial PIN (last 6 of the SSN, X -> 0)."""
    person, _ = demo_holder(f"gen{generation}")
    return Ssn.parse(person.to_mapping()["ssn"]).initial_pin


def _change(s: CardSession) -> object:
    return flows.change_pin(s, initial_pin(s.generation), _v("changed_pin"))


def _lock(s: CardSession) -> None:
    for _ in range(s.profile.pin.try_limit):
        try:
            flows.verify_pin(s, _v("wrong_pin"))
        except PinError:
            continue


def _load_start(s: CardSession) -> object:
    return wallet.load(s, int(_v("start_balance")), now=_now())


def _balance(state: State) -> int:
    for fid, content in state["binary_files"].items():
        if fid.upper() == _v("purse_state_fid").upper():
            return int(content["balance"])
    raise AssertionError("no purse state file in the image")


# -- probes: the card works in the state the tear left --------------------------------------


def _probe_pin(pin_old: str, pin_new: str) -> Callable[[CardSession, str], None]:
    def probe(s: CardSession, outcome: str) -> None:
        flows.verify_pin(s, pin_new if outcome == "new" else pin_old)

    return probe


def _probe_blocked_pin(pin_new: str, state_new: str) -> Callable[[CardSession, str], None]:
    def probe(s: CardSession, outcome: str) -> None:
        status = flows.pin_status(s)
        if outcome == "new":
            assert status.state == state_new and status.retries_left == status.max_tries
            flows.verify_pin(s, pin_new)
        else:
            assert status.state == "blocked" and status.retries_left == 0

    return probe


def _probe_life_cycle(old: LifeCycle, new: LifeCycle) -> Callable[[CardSession, str], None]:
    def probe(s: CardSession, outcome: str) -> None:
        assert s.life_cycle() is (new if outcome == "new" else old)

    return probe


def _probe_write(s: CardSession, outcome: str) -> None:
    address, data = _v("write_address_multi"), _v("write_data_multi")
    if outcome == "partial":
        # the operator repeats the write; the next presentation settles the torn entry as applied
        flows.write_generic(s, address, data)
        return
    read = flows.read_generic(s, address)
    written = tuple(v for v in data.split("|") if v)
    if outcome == "new":
        assert tuple(v for _, v in read.records) == written


def _probe_money(s: CardSession, outcome: str) -> None:
    again = wallet.load(s, 1, now=_now())
    assert again.balance == again.balance_before + 1


def _probe_ticket(s: CardSession, outcome: str) -> None:
    status = ticket.read_ticket(s, on=_now().date())
    assert status.present == (outcome == "new")


def _write_single(s: CardSession) -> object:
    return flows.write_generic(s, _v("write_address_single"), _v("write_data_single"))


def _write_multi(s: CardSession) -> object:
    return flows.write_generic(s, _v("write_address_multi"), _v("write_data_multi"))


def tear_flows(generation: int) -> list[TearFlow]:
    """The campaign's flows on a card of ``generation``."""
    initial, changed, chosen = initial_pin(generation), _v("changed_pin"), _v("chosen_pin")
    personalised, active = LifeCycle.PERSONALISED, LifeCycle.ACTIVE
    temp, perm = LifeCycle.TEMPORARILY_BLOCKED, LifeCycle.PERMANENTLY_BLOCKED
    out = [
        TearFlow(
            "pin.change",
            "pin.change",
            lambda: _card(generation, personalised),
            _change,
            _probe_pin(initial, changed),
        ),
        TearFlow(
            "pin.change.again",
            "pin.change",
            lambda: _card(generation, personalised, _change),
            lambda s: flows.change_pin(s, changed, chosen),
            _probe_pin(changed, chosen),
            ambiguous=True,
        ),
        TearFlow(
            "pin.reset.initial",
            "pin.reset",
            lambda: _card(generation, personalised, _change, _lock),
            flows.reset_pin,
            _probe_blocked_pin(initial, "initial"),
        ),
        TearFlow(
            "pin.reset.chosen",
            "pin.reset",
            lambda: _card(generation, personalised, _change, _lock),
            lambda s: flows.reset_pin(s, new_pin=chosen),
            _probe_blocked_pin(chosen, "ok"),
        ),
        TearFlow(
            "pin.unblock",
            "pin.unblock",
            lambda: _card(generation, personalised, _change, _lock),
            flows.unblock_pin,
            _probe_blocked_pin(changed, "ok"),
        ),
        TearFlow(
            "card.activate",
            "card.activate",
            lambda: _card(generation, personalised),
            flows.activate,
            _probe_life_cycle(personalised, active),
        ),
        TearFlow(
            "card.block.temporary",
            "card.block",
            lambda: _card(generation, active),
            lambda s: flows.block(s, "temporary"),
            _probe_life_cycle(active, temp),
        ),
        TearFlow(
            "card.block.permanent",
            "card.block",
            lambda: _card(generation, active),
            lambda s: flows.block(s, "permanent"),
            _probe_life_cycle(active, perm),
        ),
        TearFlow(
            "card.unblock",
            "card.unblock",
            lambda: _card(generation, active, lambda s: flows.block(s, "temporary")),
            flows.unblock,
            _probe_life_cycle(temp, active),
        ),
        TearFlow(
            "card.write.single",
            "card.write",
            lambda: _card(generation, active),
            _write_single,
            lambda s, outcome: None,
        ),
        TearFlow(
            "card.write.multi",
            "card.write",
            lambda: _card(generation, active),
            _write_multi,
            _probe_write,
            partial_states=1,
        ),
    ]
    if generation == 3:
        amount = int(_v("amount"))
        out += [
            TearFlow(
                "wallet.load",
                "wallet.load",
                lambda: _card(generation, active, _load_start),
                lambda s: wallet.load(s, amount, now=_now()),
                _probe_money,
                money=_balance,
            ),
            TearFlow(
                "wallet.purchase",
                "wallet.purchase",
                lambda: _card(generation, active, _load_start),
                lambda s: wallet.purchase(s, amount, now=_now()),
                _probe_money,
                money=_balance,
            ),
            TearFlow(
                "ticket.buy",
                "ticket.buy",
                lambda: _card(generation, active),
                lambda s: ticket.buy_ticket(s, _now().year, now=_now()),
                _probe_ticket,
            ),
        ]
    return out


def flow_ids(generation: int) -> list[str]:
    return [f.name for f in tear_flows(generation)]
