"""Card profiles: the card described as data (``card_model/data/profiles/*.toml``).

:func:`load_profile` (by name: ``gen3``, ``gen2``, ``gen1``) and
:func:`load_profile_file` (any path) parse and validate a profile into the
frozen dataclasses below; every problem raises :class:`ProfileError` naming
the offending entry.  The format is described in docs/card-model.md.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from card_model.applications import APPLICATION_TABLES, Applications, parse_applications
from card_model.errors import ProfileError
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle

__all__ = [
    "ELEMENT_NAMES",
    "ENCODINGS",
    "PROFILE_NAMES",
    "AccessCondition",
    "Atrs",
    "FileSpec",
    "KeySpec",
    "PersonalisationRules",
    "PinRules",
    "Profile",
    "RecordSpec",
    "load_profile",
    "load_profile_file",
    "parse_profile",
]

PROFILE_FORMAT = "sscard-card-profile"
PROFILE_FORMAT_VERSION = 1
PROFILE_NAMES = ("gen3", "gen2", "gen1")

# record encodings and the byte a shorter value is right-padded with (None: exact length)
ENCODINGS: Mapping[str, int | None] = {
    "card_id": None,
    "ascii": 0x20,
    "ascii_digits": None,
    "gbk": 0x20,
    "binary": 0x00,
    "bcd": None,
    "bcd_date": None,
}
# data elements issuance knows how to fill (card_model.issuance)
ELEMENT_NAMES = frozenset(
    {
        "card_id",
        "card_type",
        "spec_version",
        "init_org",
        "issue_date",
        "expiry_date",
        "card_number",
        "ssn",
        "name",
        "name_extension",
        "gender",
        "ethnicity",
        "birthplace",
        "birth_date",
        "address",
        "phone",
        "occupation",
        "postcode",
        # written after issuance by the service flows (card_model.ticket); absent at issuance
        "park_ticket",
    }
)
BINARY_CONTENTS = frozenset({"sign_certificate", "encryption_certificate"})
KEY_USES = frozenset({"internal_auth", "external_auth", "mac", "transport"})
INITIAL_PIN_RULES = frozenset({"ssn_last6"})
# data elements the initialisation organisation writes before the card reaches
# the issuer (card_model.initialisation); the rest come with personalisation
INITIALISED_ELEMENTS = frozenset({"card_id", "card_type", "spec_version", "init_org"})

AccessKind = Literal["always", "never", "auth", "sm", "issuance_sm"]


@dataclass(frozen=True, slots=True)
class AccessCondition:
    """Who may run a command on a file: ``kind`` and, for key conditions, the KID."""

    kind: AccessKind
    kid: int | None = None

    @property
    def needs_sm(self) -> bool:
        return self.kind in ("sm", "issuance_sm")


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record of a record file (record number = tag)."""

    tag: int
    element: str
    length: int
    max_length: int
    encoding: str

    @property
    def variable(self) -> bool:
        return self.length == 0

    @property
    def pad_byte(self) -> int | None:
        return ENCODINGS[self.encoding]


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    fid: int
    sfi: int | None
    kind: Literal["records", "binary"]
    read: AccessCondition
    update: AccessCondition
    records: tuple[RecordSpec, ...] = ()
    size: int = 0
    content: str | None = None
    _by_tag: dict[int, RecordSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_tag", {r.tag: r for r in self.records})

    def record(self, tag: int) -> RecordSpec | None:
        return self._by_tag.get(tag)


@dataclass(frozen=True, slots=True)
class KeySpec:
    role: KeyRole
    kid: int
    uses: frozenset[str]
    try_limit: int
    version: int


@dataclass(frozen=True, slots=True)
class PinRules:
    pin_id: int
    min_digits: int
    max_digits: int
    try_limit: int
    initial: str


@dataclass(frozen=True, slots=True)
class PersonalisationRules:
    """How a blank card (state 00) is personalised (docs/card-os.md §11).

    ``initialised``: data elements written at initialisation (never by the
    issuer); ``initial_roles``: keys loaded at initialisation; ``write_role``:
    the key whose MAC protects personalisation writes (records, binary
    files, SM2 key material); ``transport_role``: the key WRITE KEY
    cryptograms are made with; ``required_files``: record files whose
    fixed-length records must all be present before END OF PERSONALISATION.
    """

    initialised: frozenset[str]
    initial_roles: frozenset[KeyRole]
    write_role: KeyRole
    transport_role: KeyRole
    required_files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Atrs:
    contact: bytes
    contactless: bytes | None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    generation: int
    version: tuple[int, int]
    description: str
    spec_version: str
    algorithm: Algorithm
    sm2: bool
    card_type: str
    init_org: bytes
    issued_state: LifeCycle
    issuer_name: str
    atr: Atrs
    mf_fid: int
    df_name: bytes
    pin: PinRules
    keys: tuple[KeySpec, ...]
    files: tuple[FileSpec, ...]
    personalisation: PersonalisationRules
    # transport wallet, financial application, park ticket (card_model.applications)
    applications: Applications = field(default_factory=Applications)
    _keys_by_kid: dict[int, KeySpec] = field(default_factory=dict, repr=False, compare=False)
    _files_by_fid: dict[int, FileSpec] = field(default_factory=dict, repr=False, compare=False)
    _files_by_sfi: dict[int, FileSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys_by_kid", {k.kid: k for k in self.keys})
        object.__setattr__(self, "_files_by_fid", {f.fid: f for f in self.files})
        object.__setattr__(self, "_files_by_sfi", {f.sfi: f for f in self.files if f.sfi is not None})

    def key(self, kid: int) -> KeySpec | None:
        return self._keys_by_kid.get(kid)

    def key_for_role(self, role: KeyRole) -> KeySpec | None:
        return next((k for k in self.keys if k.role is role), None)

    def file(self, fid: int) -> FileSpec | None:
        return self._files_by_fid.get(fid)

    def file_by_sfi(self, sfi: int) -> FileSpec | None:
        return self._files_by_sfi.get(sfi)

    def file_named(self, name: str) -> FileSpec | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def block_size(self) -> int:
        return self.algorithm.block_size


# -- parsing ------------------------------------------------------------------------------


def _fail(reason: str, where: str) -> ProfileError:
    return ProfileError("profile", reason, where)


def _get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise _fail("missing", f"{where}.{key}")
    value = table[key]
    if isinstance(value, bool) and kind is not bool:
        raise _fail("wrong_type", f"{where}.{key}")
    if not isinstance(value, kind):
        raise _fail("wrong_type", f"{where}.{key}")
    return value


def _table(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = _get(doc, key, dict, where)
    return value  # type: ignore[no-any-return]


def _hex(value: str, where: str, length: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise _fail("not_hex", where) from None
    if length is not None and len(raw) != length:
        raise _fail("wrong_length", where)
    return raw


def _hex_int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _fail("wrong_type", where)
    if isinstance(value, str):
        try:
            number = int(value, 16)
        except ValueError:
            raise _fail("not_hex", where) from None
    elif isinstance(value, int):
        number = value
    else:
        raise _fail("wrong_type", where)
    if not low <= number <= high:
        raise _fail("wrong_length", where)
    return number


def _check_atr(raw: bytes, where: str) -> bytes:
    """Structure check: TS, T0 and the interface bytes it announces, the
    historical bytes, and TCK when a protocol other than T=0 is offered."""
    if len(raw) < 2 or raw[0] not in (0x3B, 0x3F):
        raise _fail("inconsistent", where)
    index, y, historical = 1, raw[1] & 0xF0, raw[1] & 0x0F
    needs_tck = False
    index += 1
    while True:
        td = None
        for bit in (0x10, 0x20, 0x40, 0x80):
            if y & bit:
                if index >= len(raw):
                    raise _fail("inconsistent", where)
                if bit == 0x80:
                    td = raw[index]
                index += 1
        if td is None:
            break
        if td & 0x0F:
            needs_tck = True
        y = td & 0xF0
    expected = index + historical + (1 if needs_tck else 0)
    if len(raw) != expected:
        raise _fail("inconsistent", f"{where} (length)")
    if needs_tck:
        check = 0
        for byte in raw[1:]:
            check ^= byte
        if check:
            raise _fail("inconsistent", f"{where} (TCK)")
    return raw


def _access(text: object, where: str, roles: Mapping[KeyRole, int]) -> AccessCondition:
    if not isinstance(text, str):
        raise _fail("wrong_type", where)
    if text in ("always", "never"):
        return AccessCondition(text)  # type: ignore[arg-type]
    kind, _, role_name = text.partition(":")
    if kind not in ("auth", "sm", "issuance_sm") or not role_name:
        raise _fail("unknown_code", where)
    try:
        role = KeyRole(role_name)
    except ValueError:
        raise _fail("unknown_code", where) from None
    if role not in roles:
        raise _fail("inconsistent", f"{where}: no key {role_name} in the profile")
    return AccessCondition(kind, roles[role])  # type: ignore[arg-type]


def _records(rows: object, where: str) -> tuple[RecordSpec, ...]:
    if not isinstance(rows, list) or not rows:
        raise _fail("missing", where)
    out: list[RecordSpec] = []
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        if not isinstance(row, dict):
            raise _fail("not_a_table", at)
        unknown = set(row) - {"tag", "element", "length", "max_length", "encoding"}
        if unknown:
            raise _fail("unexpected", f"{at}: {', '.join(sorted(unknown))}")
        tag = _hex_int(_get(row, "tag", str, at), f"{at}.tag", 0x01, 0xFE)
        element = _get(row, "element", str, at)
        if element not in ELEMENT_NAMES:
            raise _fail("unknown_code", f"{at}.element")
        length = _get(row, "length", int, at)
        max_length = row.get("max_length", length)
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise _fail("wrong_type", f"{at}.max_length")
        if not 0 <= length <= 255 or not 1 <= max_length <= 255 or (length and max_length != length):
            raise _fail("wrong_length", f"{at}.length")
        encoding = _get(row, "encoding", str, at)
        if encoding not in ENCODINGS:
            raise _fail("unknown_code", f"{at}.encoding")
        if not length and ENCODINGS[encoding] is None:
            raise _fail("inconsistent", f"{at}: variable length needs a padded encoding")
        out.append(RecordSpec(tag, element, length, max_length, encoding))
    tags = [r.tag for r in out]
    if len(set(tags)) != len(tags):
        raise _fail("inconsistent", f"{where}: duplicate record tag")
    return tuple(out)


def _files(rows: object, roles: Mapping[KeyRole, int]) -> tuple[FileSpec, ...]:
    if not isinstance(rows, list) or not rows:
        raise _fail("missing", "file")
    out: list[FileSpec] = []
    for i, row in enumerate(rows):
        at = f"file[{i}]"
        if not isinstance(row, dict):
            raise _fail("not_a_table", at)
        allowed = {"name", "fid", "sfi", "kind", "read", "update", "records", "size", "content"}
        unknown = set(row) - allowed
        if unknown:
            raise _fail("unexpected", f"{at}: {', '.join(sorted(unknown))}")
        name = _get(row, "name", str, at)
        fid = _hex_int(_get(row, "fid", str, at), f"{at}.fid", 0x0001, 0xFFFE)
        if fid == 0x3F00:
            raise _fail("inconsistent", f"{at}.fid: 3F00 is the MF")
        sfi_value = row.get("sfi")
        sfi = None if sfi_value is None else _hex_int(sfi_value, f"{at}.sfi", 1, 30)
        kind = _get(row, "kind", str, at)
        read = _access(row.get("read", "always"), f"{at}.read", roles)
        update = _access(row.get("update", "never"), f"{at}.update", roles)
        if kind == "records":
            if "size" in row or "content" in row:
                raise _fail("inconsistent", f"{at}: size/content belong to binary files")
            out.append(
                FileSpec(
                    name, fid, sfi, "records", read, update, _records(row.get("records"), f"{at}.records")
                )
            )
        elif kind == "binary":
            if "records" in row:
                raise _fail("inconsistent", f"{at}: records belong to record files")
            size = _get(row, "size", int, at)
            if not 1 <= size <= 0x7FFF:
                raise _fail("wrong_length", f"{at}.size")
            content = row.get("content")
            if content is not None and content not in BINARY_CONTENTS:
                raise _fail("unknown_code", f"{at}.content")
            out.append(FileSpec(name, fid, sfi, "binary", read, update, size=size, content=content))
        else:
            raise _fail("unknown_code", f"{at}.kind")
    for attr in ("name", "fid"):
        values = [getattr(f, attr) for f in out]
        if len(set(values)) != len(values):
            raise _fail("inconsistent", f"file: duplicate {attr}")
    sfis = [f.sfi for f in out if f.sfi is not None]
    if len(set(sfis)) != len(sfis):
        raise _fail("inconsistent", "file: duplicate sfi")
    return tuple(out)


def _small_int(value: object, where: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("wrong_type", where)
    if not 1 <= value <= high:
        raise _fail("wrong_length", where)
    return value


def _keys(doc: Mapping[str, Any]) -> tuple[KeySpec, ...]:
    defaults = doc.get("key_defaults", {})
    if not isinstance(defaults, dict):
        raise _fail("not_a_table", "key_defaults")
    default_limit = defaults.get("try_limit", 5)
    default_version = defaults.get("version", 1)
    rows = doc.get("key")
    if not isinstance(rows, list) or not rows:
        raise _fail("missing", "key")
    out: list[KeySpec] = []
    for i, row in enumerate(rows):
        at = f"key[{i}]"
        if not isinstance(row, dict):
            raise _fail("not_a_table", at)
        unknown = set(row) - {"role", "kid", "uses", "try_limit", "version"}
        if unknown:
            raise _fail("unexpected", f"{at}: {', '.join(sorted(unknown))}")
        try:
            role = KeyRole(_get(row, "role", str, at))
        except ValueError:
            raise _fail("unknown_code", f"{at}.role") from None
        kid = _hex_int(row.get("kid", role.kid), f"{at}.kid", 0x01, 0x1F)
        uses = row.get("uses", [])
        if not isinstance(uses, list) or not uses or not set(uses) <= KEY_USES:
            raise _fail("unknown_code", f"{at}.uses")
        limit = _small_int(row.get("try_limit", default_limit), f"{at}.try_limit", 15)
        version = _small_int(row.get("version", default_version), f"{at}.version", 255)
        out.append(KeySpec(role, kid, frozenset(uses), limit, version))
    for attr in ("role", "kid"):
        values = [getattr(k, attr) for k in out]
        if len(set(values)) != len(values):
            raise _fail("inconsistent", f"key: duplicate {attr}")
    return tuple(out)


def _pin(doc: Mapping[str, Any]) -> PinRules:
    table = _table(doc, "pin", "")
    pin_id = _hex_int(table.get("id", 1), "pin.id", 0x01, 0x1F)
    low = _get(table, "min_digits", int, "pin")
    high = _get(table, "max_digits", int, "pin")
    limit = _get(table, "try_limit", int, "pin")
    if not 4 <= low <= high <= 12:
        raise _fail("inconsistent", "pin.min_digits/max_digits")
    if not 1 <= limit <= 15:
        raise _fail("wrong_length", "pin.try_limit")
    initial = table.get("initial", "ssn_last6")
    if initial not in INITIAL_PIN_RULES:
        raise _fail("unknown_code", "pin.initial")
    if initial == "ssn_last6" and not low <= 6 <= high:
        raise _fail("inconsistent", "pin.initial: a 6-digit initial PIN must be allowed")
    return PinRules(pin_id, low, high, limit, initial)


def _role_name(value: object, where: str, roles: Mapping[KeyRole, int]) -> KeyRole:
    if not isinstance(value, str):
        raise _fail("wrong_type", where)
    try:
        role = KeyRole(value)
    except ValueError:
        raise _fail("unknown_code", where) from None
    if role not in roles:
        raise _fail("inconsistent", f"{where}: no key {value} in the profile")
    return role


def _personalisation(
    doc: Mapping[str, Any], keys: tuple[KeySpec, ...], files: tuple[FileSpec, ...]
) -> PersonalisationRules:
    table = doc.get("personalisation", {})
    if not isinstance(table, dict):
        raise _fail("not_a_table", "personalisation")
    unknown = set(table) - {"initialised", "initial_keys", "write_key", "transport_key", "required_files"}
    if unknown:
        raise _fail("unexpected", f"personalisation: {', '.join(sorted(unknown))}")
    roles = {k.role: k.kid for k in keys}
    uses = {k.role: k.uses for k in keys}
    elements = table.get("initialised", sorted(INITIALISED_ELEMENTS))
    if not isinstance(elements, list) or not set(elements) <= INITIALISED_ELEMENTS:
        raise _fail("unknown_code", "personalisation.initialised")
    transport = _role_name(table.get("transport_key", "KTK"), "personalisation.transport_key", roles)
    if "transport" not in uses[transport]:
        raise _fail("inconsistent", "personalisation.transport_key: key without transport use")
    write = _role_name(table.get("write_key", "AMK"), "personalisation.write_key", roles)
    if "mac" not in uses[write]:
        raise _fail("inconsistent", "personalisation.write_key: key without mac use")
    initial_names = table.get("initial_keys", [transport.value])
    if not isinstance(initial_names, list):
        raise _fail("wrong_type", "personalisation.initial_keys")
    initial = frozenset(_role_name(n, "personalisation.initial_keys", roles) for n in initial_names)
    if transport not in initial or write in initial:
        raise _fail("inconsistent", "personalisation.initial_keys: the transport key only, not the write key")
    record_files = {f.name for f in files if f.kind == "records"}
    default_required = [name for name in ("EF05", "EF06") if name in record_files]
    required = table.get("required_files", default_required)
    if not isinstance(required, list) or not set(required) <= record_files:
        raise _fail("inconsistent", "personalisation.required_files: record files of the profile")
    return PersonalisationRules(frozenset(elements), initial, write, transport, tuple(required))


def parse_profile(doc: Mapping[str, Any]) -> Profile:
    """Validate a parsed profile document."""
    if doc.get("format") != PROFILE_FORMAT or doc.get("format_version") != PROFILE_FORMAT_VERSION:
        raise _fail("bad_format", "format/format_version")
    known = {
        "format",
        "format_version",
        "profile",
        "atr",
        "application",
        "pin",
        "key_defaults",
        "key",
        "file",
        "personalisation",
        *APPLICATION_TABLES,
    }
    unknown = set(doc) - known
    if unknown:
        raise _fail("unexpected", ", ".join(sorted(unknown)))
    meta = _table(doc, "profile", "")
    name = _get(meta, "name", str, "profile")
    generation = _get(meta, "generation", int, "profile")
    if generation not in (1, 2, 3):
        raise _fail("unknown_code", "profile.generation")
    version_text = _get(meta, "version", str, "profile")
    major, _, minor = version_text.partition(".")
    if not (major.isdigit() and minor.isdigit() and int(major) < 256 and int(minor) < 256):
        raise _fail("wrong_type", "profile.version (major.minor)")
    spec_version = _get(meta, "spec_version", str, "profile")
    if len(spec_version.encode("ascii", "replace")) != 4:
        raise _fail("wrong_length", "profile.spec_version")
    try:
        algorithm = Algorithm(_get(meta, "algorithm", str, "profile"))
    except ValueError:
        raise _fail("unknown_code", "profile.algorithm") from None
    sm2 = _get(meta, "sm2", bool, "profile")
    card_type = _get(meta, "card_type", str, "profile")
    if len(card_type) != 1 or not card_type.isdigit():
        raise _fail("wrong_type", "profile.card_type")
    init_org = _hex(_get(meta, "init_org", str, "profile"), "profile.init_org", 12)
    try:
        issued_state = LifeCycle.from_label(_get(meta, "issued_state", str, "profile"))
    except KeyError:
        raise _fail("unknown_code", "profile.issued_state") from None
    atr_table = _table(doc, "atr", "")
    contact = _check_atr(_hex(_get(atr_table, "contact", str, "atr"), "atr.contact"), "atr.contact")
    contactless_text = atr_table.get("contactless")
    contactless = (
        None
        if contactless_text is None
        else _check_atr(_hex(str(contactless_text), "atr.contactless"), "atr.contactless")
    )
    app = _table(doc, "application", "")
    mf_fid = _hex_int(_get(app, "fid", str, "application"), "application.fid", 1, 0xFFFF)
    df_name = _hex(_get(app, "df_name", str, "application"), "application.df_name")
    if not 1 <= len(df_name) <= 16:
        raise _fail("wrong_length", "application.df_name")
    keys = _keys(doc)
    roles = {k.role: k.kid for k in keys}
    files = _files(doc.get("file"), roles)
    if sm2 and not any(f.content == "sign_certificate" for f in files):
        raise _fail("inconsistent", "an SM2 profile needs a sign_certificate file")
    for f in files:
        for access in (f.read, f.update):
            if access.kind == "auth":
                spec = next(k for k in keys if k.kid == access.kid)
                if "external_auth" not in spec.uses:
                    raise _fail("inconsistent", f"{f.name}: auth key without external_auth use")
            if access.needs_sm:
                spec = next(k for k in keys if k.kid == access.kid)
                if "mac" not in spec.uses:
                    raise _fail("inconsistent", f"{f.name}: sm key without mac use")
    return Profile(
        name=name,
        generation=generation,
        version=(int(major), int(minor)),
        description=str(meta.get("description", "")),
        spec_version=spec_version,
        algorithm=algorithm,
        sm2=sm2,
        card_type=card_type,
        init_org=init_org,
        issued_state=issued_state,
        issuer_name=str(meta.get("issuer_name", "")),
        atr=Atrs(contact, contactless),
        mf_fid=mf_fid,
        df_name=df_name,
        pin=_pin(doc),
        keys=keys,
        files=files,
        personalisation=_personalisation(doc, keys, files),
        applications=parse_applications(doc, keys=keys, files=files),
    )


def load_profile_file(path: str | os.PathLike[str]) -> Profile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise _fail("unreadable", str(Path(path).name)) from None
    return _parse_text(text)


def _parse_text(text: str) -> Profile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail("syntax", f"line {getattr(exc, 'lineno', '?')}") from None
    return parse_profile(doc)


@cache
def load_profile(name: str) -> Profile:
    """A built-in profile by name (``gen3``, ``gen2``, ``gen1``); cached."""
    if name not in PROFILE_NAMES:
        raise _fail("unknown_code", f"profile name (one of {', '.join(PROFILE_NAMES)})")
    text = (
        resources.files("card_model").joinpath("data", "profiles", f"{name}.toml").read_text(encoding="utf-8")
    )
    return _parse_text(text)
