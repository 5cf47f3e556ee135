"""Codecs of the card's data elements, declared with ``construct``.

Every codec decodes the exact bytes of a record value into a Python value and
encodes a Python value into the full declared length (text right-padded
with ``20``).  Decoding errors are :class:`~apdu.errors.ProtocolError`
(the card sent something malformed); encoding errors are
:class:`~apdu.errors.InvalidInput` (kind ``chars`` or ``length``).  Messages
name the element and the problem, never the value (it may be personal data).

``ELEMENTS`` maps each record tag of EF05/EF06/EF07 to its :class:`Element`
(data: ``apdu/data/elements.toml``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

import construct as cs

from apdu._tables import load_table
from apdu.errors import InvalidInput, PinEntryError, ProtocolError
from apdu.tlv import encode_record, parse_records

__all__ = [
    "CODECS",
    "ELEMENTS",
    "FILES",
    "CardIdentification",
    "Codec",
    "Element",
    "bcd_date",
    "bcd_digits",
    "bcd_region",
    "card_id",
    "decode_file",
    "decode_pin",
    "element",
    "elements_of",
    "encode_pin",
]


class _CharsError(cs.ValidationError):  # type: ignore[misc]
    """A value holds characters/digits outside the allowed set."""


class _LengthError(cs.ValidationError):  # type: ignore[misc]
    """A value does not fit the field."""


def _codes() -> dict[str, Any]:
    table: dict[str, Any] = load_table("elements")["codes"]
    return table


# -- construct building blocks --------------------------------------------------


class _BcdDigits(cs.Adapter):  # type: ignore[misc]
    """n bytes of packed BCD <-> a string of 2n decimal digits."""

    def __init__(self, size: int) -> None:
        super().__init__(cs.Bytes(size))
        self.size = size

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        text = obj.hex()
        if not text.isdigit():
            raise _CharsError("BCD nibble outside 0-9")
        return text

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if not isinstance(obj, str) or not obj.isascii() or not obj.isdigit():
            raise _CharsError("only decimal digits are allowed")
        if len(obj) != 2 * self.size:
            raise _LengthError(f"{2 * self.size} digits expected, got {len(obj)}")
        return bytes.fromhex(obj)


class _BcdDate(cs.Adapter):  # type: ignore[misc]
    """4 bytes BCD YYYYMMDD <-> datetime.date (calendar-checked)."""

    def __init__(self) -> None:
        super().__init__(_BcdDigits(4))

    def _decode(self, obj: str, context: Any, path: str) -> _dt.date:
        try:
            return _dt.date(int(obj[:4]), int(obj[4:6]), int(obj[6:]))
        except ValueError:
            raise cs.ValidationError("not a calendar date (YYYYMMDD)") from None

    def _encode(self, obj: Any, context: Any, path: str) -> str:
        if isinstance(obj, _dt.datetime):
            obj = obj.date()
        if isinstance(obj, str):
            text = obj.replace("-", "")
            if len(text) != 8 or not text.isascii() or not text.isdigit():
                raise _CharsError("a date is YYYY-MM-DD or YYYYMMDD")
            obj = self._decode(text, context, path)
        if not isinstance(obj, _dt.date):
            raise _CharsError("a date is expected")
        return f"{obj.year:04d}{obj.month:02d}{obj.day:02d}"


class _BcdRegion(cs.Adapter):  # type: ignore[misc]
    """3 bytes BCD GB/T 2260 region code <-> 6-digit string."""

    def __init__(self) -> None:
        super().__init__(_BcdDigits(3))

    @staticmethod
    def _validate(code: str) -> str:
        if code[:2] not in _codes()["provinces"]:
            raise cs.ValidationError("region code has no valid province prefix")
        return code

    def _decode(self, obj: str, context: Any, path: str) -> str:
        return self._validate(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        if isinstance(obj, str) and obj.isascii() and obj.isdigit() and len(obj) == 6:
            return self._validate(obj)
        return obj  # the BCD layer reports the precise problem


class _BcdEthnicity(cs.Adapter):  # type: ignore[misc]
    """1 byte BCD GB/T 3304 code <-> 2-digit string."""

    def __init__(self) -> None:
        super().__init__(_BcdDigits(1))

    @staticmethod
    def _validate(code: str) -> str:
        codes = _codes()
        if not (1 <= int(code) <= codes["ethnicity_max"] or code in codes["ethnicity_extra"]):
            raise cs.ValidationError("not a GB/T 3304 ethnicity code")
        return code

    def _decode(self, obj: str, context: Any, path: str) -> str:
        return self._validate(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        if isinstance(obj, str) and obj.isascii() and obj.isdigit() and len(obj) == 2:
            return self._validate(obj)
        return obj


class _PaddedText(cs.Adapter):  # type: ignore[misc]
    """Text in ``encoding``, right-padded with ``20`` to ``size`` bytes
    (``size`` 0: variable length up to ``max_size``, no padding)."""

    def __init__(
        self,
        size: int,
        encoding: str,
        *,
        max_size: int = 255,
        charset: str | None = None,
        exact: bool = False,
    ) -> None:
        super().__init__(cs.Bytes(size) if size else cs.GreedyBytes)
        self.size = size
        self.exact = exact
        self.max_size = max_size
        self.encoding = encoding
        self.charset = charset

    def _check_chars(self, text: str) -> None:
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise _CharsError("control characters are not allowed")
        if self.charset == "digits" and not (text.isascii() and text.isdigit()):
            raise _CharsError("only decimal digits are allowed")
        if self.charset == "printable" and not all(0x20 <= ord(ch) < 0x7F for ch in text):
            raise _CharsError("only printable ASCII is allowed")

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        if not self.size and len(obj) > self.max_size:
            raise _LengthError(f"longer than {self.max_size} bytes")
        body = obj.rstrip(b" ") if self.size and not self.exact else obj
        try:
            text = body.decode(self.encoding, errors="strict")
        except UnicodeDecodeError as exc:
            raise _CharsError(
                f"invalid {self.encoding.upper()} byte sequence at offset {exc.start}"
            ) from None
        self._check_chars(text)
        return text

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if not isinstance(obj, str):
            raise _CharsError("a text value is expected")
        self._check_chars(obj)
        try:
            raw = obj.encode(self.encoding, errors="strict")
        except UnicodeEncodeError as exc:
            raise _CharsError(
                f"character at position {exc.start} is not representable in {self.encoding.upper()}"
            ) from None
        limit = self.size or self.max_size
        if len(raw) > limit:
            raise _LengthError(f"{len(raw)} bytes exceed the field's {limit}")
        if self.exact and len(raw) != self.size:
            raise _LengthError(f"{self.size} characters expected, got {len(raw)}")
        if self.size and raw.endswith(b" "):
            raise _CharsError("trailing spaces cannot be stored (they are padding)")
        return raw.ljust(self.size, b" ") if self.size else raw


class _Ssn(cs.Adapter):  # type: ignore[misc]
    """18 ASCII characters: 17 digits and a digit or X (format only)."""

    def __init__(self) -> None:
        super().__init__(_PaddedText(18, "ascii", charset="printable"))

    @staticmethod
    def _validate(text: str) -> str:
        if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
            raise _CharsError("a social security number is 17 digits and a digit or X")
        return text

    def _decode(self, obj: str, context: Any, path: str) -> str:
        return self._validate(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> str:
        if not isinstance(obj, str):
            raise _CharsError("a text value is expected")
        return self._validate(obj.upper())


@dataclass(frozen=True, slots=True)
class CardIdentification:
    """The 16-byte card identification code: region BCD(3) || RID(5) || serial(8)."""

    region: str
    serial: bytes
    # the encoding, made once (a session names its card in every journal entry)
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    @property
    def rid(self) -> bytes:
        return bytes.fromhex(_codes()["card_id_rid"])

    def encode(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = card_id.encode(self)
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    def hex(self) -> str:
        return self.encode().hex().upper()

    @property
    def diversification_factor(self) -> bytes:
        """The last 8 bytes (issuer serial), the key diversification factor."""
        return self.serial

    @classmethod
    def from_hex(cls, text: str) -> CardIdentification:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput("card identification code: not hexadecimal", kind="chars") from None
        value: CardIdentification = card_id.decode(raw, error=InvalidInput)
        return value


class _CardId(cs.Adapter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(
            cs.Struct(
                "region" / _BcdRegion(),
                "rid" / cs.Const(bytes.fromhex(_codes()["card_id_rid"])),
                "serial" / cs.Bytes(8),
            )
        )

    def _decode(self, obj: Any, context: Any, path: str) -> CardIdentification:
        return CardIdentification(region=obj.region, serial=bytes(obj.serial))

    def _encode(self, obj: Any, context: Any, path: str) -> dict[str, Any]:
        if not isinstance(obj, CardIdentification):
            raise _CharsError("a CardIdentification is expected")
        if len(obj.serial) != 8:
            raise _LengthError("the issuer serial is 8 bytes")
        return {"region": obj.region, "rid": None, "serial": obj.serial}


class _Binary(cs.Adapter):  # type: ignore[misc]
    def __init__(self, size: int) -> None:
        super().__init__(cs.Bytes(size))
        self.size = size

    def _decode(self, obj: bytes, context: Any, path: str) -> bytes:
        return bytes(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if not isinstance(obj, (bytes, bytearray)):
            raise _CharsError("bytes are expected")
        if len(obj) != self.size:
            raise _LengthError(f"{self.size} bytes expected, got {len(obj)}")
        return bytes(obj)


# -- codec wrapper -----------------------------------------------------------------


class Codec:
    """A construct object with strict length checks and project exceptions."""

    def __init__(self, name: str, con: cs.Construct, size: int, max_size: int = 255) -> None:
        self.name = name
        self.con = con
        self.size = size
        self.max_size = max_size

    def decode(self, raw: bytes, *, error: type[ProtocolError | InvalidInput] = ProtocolError) -> Any:
        raw = bytes(raw)
        if self.size and len(raw) != self.size:
            raise error(f"{self.name}: {len(raw)} bytes, expected {self.size}")
        if not self.size and len(raw) > self.max_size:
            raise error(f"{self.name}: {len(raw)} bytes exceed {self.max_size}")
        try:
            return self.con.parse(raw)
        except cs.ConstructError as exc:
            raise error(f"{self.name}: {_describe(exc)}") from None

    def encode(self, value: Any) -> bytes:
        try:
            raw: bytes = self.con.build(value)
        except _LengthError as exc:
            raise InvalidInput(f"{self.name}: {_describe(exc)}", kind="length") from None
        except cs.ConstructError as exc:
            raise InvalidInput(f"{self.name}: {_describe(exc)}", kind="chars") from None
        return raw


def _describe(exc: cs.ConstructError) -> str:
    if isinstance(exc, cs.ConstError):
        return "constant bytes (RID) do not match"
    if isinstance(exc, cs.StreamError):
        return "too few bytes"
    # Our own ValidationErrors carry value-free messages; construct prefixes
    # the path ("Error in path (parsing) -> region\n<message>").
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


bcd_date = Codec("BCD date", _BcdDate(), 4)
bcd_region = Codec("BCD region code", _BcdRegion(), 3)
card_id = Codec("card identification code", _CardId(), 16)


def bcd_digits(size: int) -> Codec:
    return Codec(f"BCD({size})", _BcdDigits(size), size)


def _make_codec(kind: str, name: str, size: int, max_size: int) -> Codec:
    makers: dict[str, Any] = {
        "card_id": lambda: _CardId(),
        "ascii": lambda: _PaddedText(size, "ascii", max_size=max_size, charset="printable"),
        "ascii_digits": lambda: _PaddedText(size, "ascii", max_size=max_size, charset="digits", exact=True),
        "gbk": lambda: _PaddedText(size, "gbk", max_size=max_size),
        "binary": lambda: _Binary(size),
        "bcd_date": lambda: _BcdDate(),
        "bcd_region": lambda: _BcdRegion(),
        "bcd_ethnicity": lambda: _BcdEthnicity(),
        "ssn": lambda: _Ssn(),
    }
    maker = makers.get(kind)
    if maker is None:
        raise LookupError(f"elements.toml: unknown codec {kind!r}")
    return Codec(name, maker(), size, max_size)


CODECS = (
    "card_id",
    "ascii",
    "ascii_digits",
    "gbk",
    "binary",
    "bcd_date",
    "bcd_region",
    "bcd_ethnicity",
    "ssn",
)


# -- element table -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    tag: int
    name: str
    zh: str
    file: str
    fid: int
    sfi: int
    length: int
    max_length: int
    codec_name: str
    codec: Codec

    def decode(self, value: bytes) -> Any:
        return self.codec.decode(value)

    def encode(self, value: Any) -> bytes:
        return self.codec.encode(value)

    def encode_record(self, value: Any) -> bytes:
        return encode_record(self.tag, self.encode(value))


@cache
def _build() -> tuple[Mapping[int, Element], Mapping[str, tuple[int, int]]]:
    table = load_table("elements")
    files = {name: (int(row["fid"], 16), int(row["sfi"])) for name, row in table["files"].items()}
    out: dict[int, Element] = {}
    for row in table["element"]:
        tag = int(row["tag"], 16)
        fid, sfi = files[row["file"]]
        length = int(row["length"])
        max_length = int(row.get("max_length", length))
        out[tag] = Element(
            tag=tag,
            name=row["name"],
            zh=row["zh"],
            file=row["file"],
            fid=fid,
            sfi=sfi,
            length=length,
            max_length=max_length,
            codec_name=row["codec"],
            codec=_make_codec(row["codec"], row["name"], length, max_length),
        )
    return MappingProxyType(out), MappingProxyType(files)


ELEMENTS: Mapping[int, Element] = _build()[0]
FILES: Mapping[str, tuple[int, int]] = _build()[1]


def element(name_or_tag: str | int) -> Element:
    """Look an element up by tag or by name."""
    if isinstance(name_or_tag, int):
        found = ELEMENTS.get(name_or_tag)
    else:
        found = next((e for e in ELEMENTS.values() if e.name == name_or_tag), None)
    if found is None:
        raise InvalidInput(f"unknown data element {name_or_tag!r}", kind="parameter")
    return found


def elements_of(file: str) -> list[Element]:
    return [e for e in ELEMENTS.values() if e.file == file]


def decode_file(file: str, data: bytes) -> dict[str, Any]:
    """Decode a "read all records" answer of ``file`` into ``{name: value}``."""
    known = {e.tag: e for e in elements_of(file)}
    if not known:
        raise InvalidInput(f"unknown record file {file!r}", kind="parameter")
    out: dict[str, Any] = {}
    for tag, value in parse_records(data):
        elem = known.get(tag)
        if elem is None:
            raise ProtocolError(f"{file}: unexpected record tag {tag:02X}")
        if elem.name in out:
            raise ProtocolError(f"{file}: record tag {tag:02X} appears twice")
        out[elem.name] = elem.decode(value)
    return out


# -- PIN block -----------------------------------------------------------------------


def _pin_limits() -> tuple[int, int]:
    row = load_table("elements")["pin"]
    return int(row["min_digits"]), int(row["max_digits"])


def encode_pin(pin: str) -> bytes:
    """Pack PIN digits as BCD (6 digits -> 3 bytes; an odd count ends with F)."""
    low, high = _pin_limits()
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        raise InvalidInput("PIN: only decimal digits are allowed", kind="chars")
    if not low <= len(pin) <= high:
        raise PinEntryError(f"PIN: {len(pin)} digits, {low}..{high} allowed", kind="length")
    text = pin if len(pin) % 2 == 0 else pin + "F"
    return bytes.fromhex(text)


def decode_pin(raw: bytes) -> str:
    """Unpack a BCD PIN block (card side).  ProtocolError when malformed."""
    low, high = _pin_limits()
    text = bytes(raw).hex().upper()
    text = text.removesuffix("F")
    if not text.isdigit():
        raise ProtocolError("PIN block: nibble outside 0-9")
    if not low <= len(text) <= high:
        raise ProtocolError(f"PIN block: {len(text)} digits, {low}..{high} allowed")
    return text
