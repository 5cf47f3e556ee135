"""What each national function does, over the terminal API.

A card handler is ``fn(ctx, session, call, keys) -> pOutInfo``: ``keys`` is
the key source to use (None: the session's configured one; an ``_HSM_Step``
conversation passes its hand-over source).  Reader handlers need no card.
Handlers call :mod:`terminal.flows`; the only card command of the service's
own is READ PUBLIC KEY for ``iReadSignatureKey``
(:mod:`terminal.service.adapters`); ``iWriteCA`` is
:func:`terminal.flows.write_ca.write_certificates`.  The wallet functions' texts are in
:mod:`terminal.service.national_wallet`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from terminal import flows
from terminal.flows import wallet
from terminal.flows.write_ca import write_certificates
from terminal.keysource.base import KeySource
from terminal.service.adapters import read_signature_public_key
from terminal.service.context import ServiceContext
from terminal.service.errors import FunctionNotSupported
from terminal.service.national_protocol import NationalCall
from terminal.service.national_wallet import debit_text, parse_pay_info, records_text
from terminal.session import CardSession

__all__ = ["CARD_HANDLERS", "READER_HANDLERS", "CardHandler", "uses_key_source"]

CardFn = Callable[[ServiceContext, CardSession, NationalCall, KeySource | None], str]
ReaderFn = Callable[[ServiceContext, NationalCall], str]


@dataclass(frozen=True, slots=True)
class CardHandler:
    fn: CardFn
    hsm: bool  # has _HSM_Step variants (the flow takes a key source)


def _card_info(call: NationalCall) -> str | None:
    """``pCardInfo``; an empty one means "do not check"."""
    value = call.args.get("pCardInfo")
    return value if isinstance(value, str) and value.strip() else None


def read_card_bas(
    ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None
) -> str:
    return flows.read_card_bas(session, key_source=keys)


def read_card(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    result = flows.read_generic(
        session, call.text_arg("pFileAddr"), card_info=_card_info(call), key_source=keys
    )
    return result.national()


def write_card(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    flows.write_generic(
        session,
        call.text_arg("pFileAddr"),
        call.text_arg("pWriteData"),
        card_info=_card_info(call),
        key_source=keys,
    )
    return ""


def verify_pin(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    ctx.desk.verify(session)
    return ""


def change_pin(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    ctx.desk.change(session)
    return ""


def reload_pin(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    flows.check_card_info(session, _card_info(call))
    flows.reset_pin(session, key_source=keys)
    return ""


def unblock_pin(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    flows.check_card_info(session, _card_info(call))
    flows.unblock_pin(session, key_source=keys)
    return ""


def read_signature_key(
    ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None
) -> str:
    return read_signature_public_key(session).hex().upper() + "|"


def write_ca(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    """Certificates and the sealed encryption key pair to a card in personalisation."""
    write_certificates(
        session,
        call.text_arg("pWriteData"),
        anchors=ctx.runner.anchors,
        key_source=keys,
        card_info=_card_info(call),
    )
    return ""


def do_debit(ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None) -> str:
    pay = parse_pay_info(call.text_arg("pPayInfo"))
    flows.check_card_info(session, _card_info(call))
    return debit_text(wallet.purchase(session, pay.amount, key_source=keys, now=pay.moment))


def read_debit_record(
    ctx: ServiceContext, session: CardSession, call: NationalCall, keys: KeySource | None
) -> str:
    return records_text(wallet.wallet_records(session))


def reader_info(ctx: ServiceContext, call: NationalCall) -> str:
    """``device no|PSAM terminal no|``: the configured device number (else the
    card reader's name) and the terminal number (configured, else the PSAM's)."""
    device = ctx.config.device_number
    if not device:
        readers = [r for r in ctx.backend.readers() if r.kind != "psam"]
        pattern = ctx.config.card_reader.casefold()
        chosen = [r for r in readers if pattern in r.name.casefold()] if pattern else readers
        device = chosen[0].name if chosen else ""
    ctx.keys.get()
    return f"{device}|{ctx.keys.terminal_number}|"


def unsupported(ctx: ServiceContext, call: NationalCall) -> str:
    raise FunctionNotSupported(f"{call.spec.name} is not offered by this terminal")


CARD_HANDLERS: dict[str, CardHandler] = {
    "read_card_bas": CardHandler(read_card_bas, hsm=True),
    "read_card": CardHandler(read_card, hsm=True),
    "write_card": CardHandler(write_card, hsm=True),
    "verify_pin": CardHandler(verify_pin, hsm=False),
    "change_pin": CardHandler(change_pin, hsm=False),
    "reload_pin": CardHandler(reload_pin, hsm=True),
    "unblock_pin": CardHandler(unblock_pin, hsm=True),
    "read_signature_key": CardHandler(read_signature_key, hsm=False),
    "write_ca": CardHandler(write_ca, hsm=False),
    "do_debit": CardHandler(do_debit, hsm=True),
    "read_debit_record": CardHandler(read_debit_record, hsm=False),
}

READER_HANDLERS: dict[str, ReaderFn] = {
    "reader_info": reader_info,
    "unsupported": unsupported,
}


def uses_key_source(call: NationalCall) -> bool:
    """``iAuthType`` 0 reads without external authentication (no key source)."""
    return call.args.get("iAuthType", 1) != 0
