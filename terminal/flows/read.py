"""Reading the card: basic information (EF05), holder information (EF06) and
the national ``iReadCardBas`` string."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from apdu.elements import decode_file
from apdu.errors import KeySourceError, ProtocolError
from card_model.errors import CardModelError
from card_model.values import Ethnicity, Gender
from terminal.flows._common import authenticate_for, file_spec, journal_scope
from terminal.flows.results import BasicInfo, HolderInfo
from terminal.keysource.base import KeySource
from terminal.session import CardSession

__all__ = ["card_bas_string", "read_basic", "read_card_bas", "read_holder"]


def read_basic(session: CardSession) -> BasicInfo:
    """Card identification (EF05, readable without authentication) and the
    detection results (generation, ATR)."""
    with session.transaction(), journal_scope(session, "card.read_basic") as scope:
        raw = session.read_all_raw(file_spec(session, "EF05").sfi or 5)
        info = session.info
        # The card is read again (it is still there, it is still this card); the
        # same bytes as at detection decode to the same values (≈ 0.1 ms saved).
        ef05 = info.ef05 if raw == info.ef05_raw else decode_file("EF05", raw)
        card_id = ef05["card_id"]
        scope.add(generation=info.generation)
        return BasicInfo(
            generation=info.generation,
            spec_version=str(ef05["spec_version"]),
            card_type=str(ef05["card_type"]),
            card_id=card_id.hex(),
            region_code=str(card_id.region),
            init_org=bytes(ef05["init_org"]).hex().upper(),
            issue_date=ef05["issue_date"],
            expiry_date=ef05["expiry_date"],
            card_number=str(ef05["card_number"]),
            atr=info.atr.hex().upper(),
            historical_bytes=info.historical_bytes.hex().upper(),
            interface=info.interface,
            application_blocked=info.application_blocked,
        )


def _text(kind: type[Gender] | type[Ethnicity], code: str) -> str:
    try:
        return kind(code).text
    except CardModelError:
        return ""


def read_holder(session: CardSession, *, key_source: KeySource | None = None) -> HolderInfo:
    """Holder basic information (EF06); generations 2/3 authenticate with the
    reading key (RK) first, generation 1 reads freely (as the profile says)."""
    spec = file_spec(session, "EF06")
    with session.transaction(), journal_scope(session, "card.read_holder") as scope:
        authenticated = authenticate_for(session, spec, key_source)
        scope.add(external_auth=authenticated)
        values: dict[str, Any] = decode_file("EF06", session.read_all_raw(spec.sfi or 6))
        missing = {"ssn", "name", "gender", "ethnicity", "birthplace", "birth_date"} - set(values)
        if missing:
            raise ProtocolError(f"EF06 lacks {', '.join(sorted(missing))}")
        extension = str(values.get("name_extension", ""))
        gender = str(values["gender"])
        ethnicity = str(values["ethnicity"])
        return HolderInfo(
            ssn=str(values["ssn"]),
            name=str(values["name"]) + extension,
            name_extension=extension,
            gender=gender,
            gender_text=_text(Gender, gender),
            ethnicity=ethnicity,
            ethnicity_text=_text(Ethnicity, ethnicity),
            birthplace=str(values["birthplace"]),
            birth_date=values["birth_date"],
        )


def _yyyymmdd(day: _dt.date) -> str:
    return day.strftime("%Y%m%d")


def card_bas_string(
    basic: BasicInfo, holder: HolderInfo | None, *, terminal_number: str = "", device_number: str = ""
) -> str:
    """The national ``iReadCardBas`` output: ``region|SSN|card no|card id code|
    name|ATR historical bytes|spec version|issue date|expiry date|terminal no|
    device no|`` (one line; dates ``YYYYMMDD``; SSN and name empty when
    ``holder`` is None)."""
    fields = (
        basic.region_code,
        holder.ssn if holder is not None else "",
        basic.card_number,
        basic.card_id,
        holder.name if holder is not None else "",
        basic.historical_bytes,
        basic.spec_version,
        _yyyymmdd(basic.issue_date),
        _yyyymmdd(basic.expiry_date),
        terminal_number,
        device_number,
    )
    return "".join(f"{field}|" for field in fields)


def read_card_bas(session: CardSession, *, key_source: KeySource | None = None) -> str:
    """``iReadCardBas``: basic information plus SSN and name when the reading key
    is available (generation 1: always); without a key source, or with one
    lacking the reading key, SSN and name are empty."""
    basic = read_basic(session)
    source = key_source if key_source is not None else session.key_source
    holder: HolderInfo | None = None
    needs_key = file_spec(session, "EF06").read.kind == "auth"
    if not needs_key or source is not None:
        try:
            holder = read_holder(session, key_source=source)
        except KeySourceError as exc:
            if exc.kind not in ("no_reading_key", "no_psam"):
                raise
    return card_bas_string(
        basic, holder, terminal_number=session.terminal_number, device_number=session.device_number
    )
