"""Project-wide exception hierarchy.

Every exception carries a stable English ``error_id``, a Chinese end-user text
``message_zh``, the national reader interface code ``national_code`` and, when
a card answered, its status word ``sw``.  Identifiers, codes and texts are
data (``apdu/data/errors.toml``, ``status_words.toml``); this module only
declares the classes.  Messages never contain secrets: callers pass only
descriptions of what failed, never PINs, keys or personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from apdu._tables import load_table

__all__ = [
    "AmbiguousReaderError",
    "ApplicationBlocked",
    "ApplicationPermanentlyBlocked",
    "AuthMethodBlocked",
    "AuthenticationFailed",
    "CardError",
    "CardMuteError",
    "CardNotGenuine",
    "CardRemovedError",
    "CardResetError",
    "CardUnpoweredError",
    "ClaNotSupported",
    "ConditionsNotSatisfied",
    "FileNotFound",
    "InputKind",
    "InsNotSupported",
    "InvalidInput",
    "KeyLocked",
    "KeyNotFound",
    "KeySourceError",
    "KeySourceKind",
    "NoCardError",
    "PcscUnavailableError",
    "PinBlocked",
    "PinEntryError",
    "PinEntryKind",
    "PinError",
    "ProtocolError",
    "ReaderNotFoundError",
    "ReaderTimeoutError",
    "RecordNotFound",
    "SecureMessagingError",
    "SecurityStatusNotSatisfied",
    "SharingViolationError",
    "SscardError",
    "TransportError",
    "VerificationFailed",
    "WrongCardType",
    "WrongData",
    "WrongLength",
    "WrongParameters",
    "apply_error_row",
]

KeySourceKind = Literal["key_level", "no_psam", "no_algorithm", "no_reading_key", "no_hsm_needed"]
PinEntryKind = Literal["cancelled", "timeout", "length", "mismatch", "initial_pin_use", "initial_pin_reuse"]
InputKind = Literal["parameter", "chars", "length"]


def _class_row(cls: type) -> dict[str, Any]:
    """The errors.toml row of ``cls`` or of its nearest listed ancestor."""
    classes: dict[str, dict[str, Any]] = load_table("errors")["classes"]
    for klass in cls.__mro__:
        row = classes.get(klass.__name__)
        if row is not None:
            return row
    return {}


def _text(key: str) -> str:
    texts: dict[str, str] = load_table("errors")["texts"]
    return texts[key]


def apply_error_row(cls: type, row: Mapping[str, Any] | None) -> None:
    """Set a class's defaults from one row of a package's error table.

    ``row`` holds ``error_id``, ``en``, ``zh`` and ``national_code`` (and
    ``exit_code`` where the package's CLI has one); ``None`` (no row for
    the class) leaves the inherited defaults.  Every package keeps its
    error texts as data and calls this from its ``_load_defaults``.
    """
    if row is None:
        return
    setattr(cls, "error_id", str(row["error_id"]))  # noqa: B010 - ClassVar set from data
    setattr(cls, "message_en", str(row["en"]))  # noqa: B010
    setattr(cls, "message_zh", str(row["zh"]))  # noqa: B010
    setattr(cls, "national_code", int(row["national_code"]))  # noqa: B010
    if "exit_code" in row:
        setattr(cls, "exit_code", int(row["exit_code"]))  # noqa: B010


def _check_sw(sw: int) -> int:
    if isinstance(sw, bool) or not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
        raise TypeError(f"a status word is an int 0x0000..0xFFFF, got {sw!r}")
    return sw


class SscardError(Exception):
    """Base of every sscard exception (see module docstring)."""

    error_id: ClassVar[str]
    message_en: ClassVar[str]
    message_zh: str
    national_code: int
    sw: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            cls._load_defaults()

    @classmethod
    def _load_defaults(cls) -> None:
        """Class defaults from errors.toml.  A subclass defined elsewhere in
        the project without a row inherits its parent's defaults; attributes
        set in a class body take precedence over the table."""
        row = load_table("errors")["classes"].get(cls.__name__)
        if row is None:
            if cls.__module__ == __name__:
                raise LookupError(f"apdu/data/errors.toml has no entry for {cls.__name__}")
            return
        own = cls.__dict__

        def put(attr: str, value: Any) -> None:
            if attr not in own:
                setattr(cls, attr, value)

        put("error_id", row["error_id"])
        put("message_en", row.get("en", getattr(cls, "message_en", "")))
        put("message_zh", row.get("zh", getattr(cls, "message_zh", "")))
        code = row["national_code"]
        if code == "sw":
            put("_national_from_sw", True)
            default_sw = row.get("default_sw")
            put("national_code", -int(default_sw, 16) if default_sw else -1002)
        else:
            put("_national_from_sw", False)
            put("national_code", int(code))
        if "default_sw" in row:
            put("_default_sw", int(row["default_sw"], 16))

    _national_from_sw: ClassVar[bool] = False
    _default_sw: ClassVar[int | None] = None

    def __init__(
        self,
        message: str = "",
        *,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
    ) -> None:
        self._explicit_message = message
        super().__init__(message or type(self).message_en)
        self.message_zh = message_zh if message_zh is not None else type(self).message_zh
        self.sw = None if sw is None else _check_sw(sw)
        self.national_code = national_code if national_code is not None else type(self).national_code
        self._explicit_zh = message_zh
        self._explicit_code = national_code

    @property
    def message(self) -> str:
        """The English message (same as ``str(exc)``)."""
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON body of the CLI/service contract."""
        out: dict[str, Any] = {
            "error": self.error_id,
            "message": self.message_zh,
            "message_en": str(self),
            "national_code": self.national_code,
        }
        if self.sw is not None:
            out["sw"] = f"{self.sw:04X}"
        return out

    def _state(self) -> dict[str, Any]:
        return {
            "message": self._explicit_message,
            "message_zh": self._explicit_zh,
            "sw": self.sw,
            "national_code": self._explicit_code,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._state()))


def _rebuild(cls: type[SscardError], state: dict[str, Any]) -> SscardError:
    return cls(**state)


SscardError._load_defaults()


# ----------------------------------------------------------------- protocol --


class ProtocolError(SscardError):
    """Malformed APDU, response, TLV, BCD or GBK; the message names what was wrong."""


# ---------------------------------------------------------------- transport --


class TransportError(SscardError):
    """The reader link failed (PC/SC or in-process transport)."""


class PcscUnavailableError(TransportError):
    """pcscd is not running or the PC/SC context cannot be established (-11)."""


class ReaderNotFoundError(TransportError):
    """No reader matches, or the reader disappeared (-12)."""


class AmbiguousReaderError(TransportError):
    """A reader name pattern matches several readers (-14)."""


class NoCardError(TransportError):
    """The reader slot is empty (-2)."""


class CardRemovedError(NoCardError):
    """The card was pulled out during a flow (-2)."""


class CardUnpoweredError(TransportError):
    """A card is present but not powered (-3)."""


class CardMuteError(TransportError):
    """The card does not answer (-4)."""


class ReaderTimeoutError(TransportError):
    """The reader or card did not answer within the time limit (-4)."""


class CardResetError(TransportError):
    """Another application reset the card; session state is lost (-11)."""


class SharingViolationError(TransportError):
    """Another application holds the card exclusively (-11)."""


# --------------------------------------------------------------------- card --


class CardError(SscardError):
    """The card answered a status word other than success.

    ``CardError(0x6A82)`` or ``CardError(sw=0x6A82)``; a string first
    argument is the English message.  The national code is -SW unless the
    class has its own (PIN errors).  Subclasses with a canonical status word
    use it when constructed without one.
    """

    sw: int | None

    def __init__(
        self,
        sw: int | str | None = None,
        message: str = "",
        *,
        message_zh: str | None = None,
        national_code: int | None = None,
    ) -> None:
        if isinstance(sw, str):
            message, sw = sw, None
        if sw is None:
            sw = type(self)._default_sw
        if sw is not None:
            _check_sw(sw)
        en, zh = self._texts(sw)
        code = national_code
        if code is None and type(self)._national_from_sw and sw is not None:
            code = -sw
        super().__init__(message or en, message_zh=message_zh, sw=sw, national_code=code)
        if message_zh is None:
            self.message_zh = zh
        self._explicit_message = message
        self._explicit_zh = message_zh
        self._explicit_code = national_code

    def _texts(self, sw: int | None) -> tuple[str, str]:
        cls = type(self)
        row = _class_row(cls)
        if sw is not None:
            from apdu.status import describe

            sw_en, sw_zh = describe(sw)
        else:
            sw_en, sw_zh = cls.message_en, cls.message_zh
        en = row.get("en", sw_en) or "card error"
        zh = row.get("zh", sw_zh) or "卡片返回错误"
        extra_en, extra_zh = self._details(own_en="en" in row, own_zh="zh" in row)
        if extra_en:
            en = f"{en}, {extra_en}"
        if extra_zh:
            zh = f"{zh}，{extra_zh}"
        if sw is not None:
            en = f"{en} ({_text('sw_en').format(sw=f'{sw:04X}')})"
        return en, zh

    def _details(self, *, own_en: bool, own_zh: bool) -> tuple[str, str]:
        """Extra detail appended to the class's own texts (status texts have it)."""
        return "", ""


class VerificationFailed(CardError):
    """63Cx / 6300 without a known context; ``retries_left`` from 63Cx."""

    def __init__(
        self,
        sw: int | str | None = None,
        message: str = "",
        *,
        message_zh: str | None = None,
        national_code: int | None = None,
        retries_left: int | None = None,
    ) -> None:
        if isinstance(sw, str):
            message, sw = sw, None
        if sw is None and retries_left is not None and 0 <= retries_left <= 0x0F:
            sw = 0x63C0 | retries_left
        if sw is None:
            sw = type(self)._default_sw
        if retries_left is None and isinstance(sw, int) and (sw & 0xFFF0) == 0x63C0:
            retries_left = sw & 0x0F
        self.retries_left: int | None = retries_left
        super().__init__(sw, message, message_zh=message_zh, national_code=national_code)

    def _details(self, *, own_en: bool, own_zh: bool) -> tuple[str, str]:
        if self.retries_left is None:
            return "", ""
        n = self.retries_left
        return (
            _text("retries_en").format(n=n) if own_en else "",
            _text("retries_zh").format(n=n) if own_zh else "",
        )

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        state["retries_left"] = self.retries_left
        return state


class AuthenticationFailed(VerificationFailed):
    """EXTERNAL AUTHENTICATE cryptogram or PSAM check refused (63Cx / 6300)."""


class PinError(VerificationFailed):
    """VERIFY/CHANGE PIN with a wrong PIN (63Cx); national -51."""


class AuthMethodBlocked(CardError):
    """6983 without a known context: a key or the PIN is blocked."""


class KeyLocked(AuthMethodBlocked):
    """6983 for a key: its try counter reached 0."""


class PinBlocked(AuthMethodBlocked):
    """6983 for the PIN; national -52."""


class SecurityStatusNotSatisfied(CardError):
    """6982: e.g. EF06 read without external authentication."""


class ConditionsNotSatisfied(CardError):
    """6985: conditions of use not satisfied (life-cycle state, PSAM key usage)."""


class SecureMessagingError(CardError):
    """6988 / 6987 / 9302: MAC wrong or SM data objects missing."""


class ApplicationBlocked(CardError):
    """6A81 (application locked) or 6283 (selected application temporarily blocked)."""

    @property
    def temporary(self) -> bool:
        """True for 6283 (the SELECT answer of a temporarily blocked application)."""
        return self.sw == 0x6283


class ApplicationPermanentlyBlocked(ApplicationBlocked):
    """9303: the application is permanently blocked."""


class FileNotFound(CardError):
    """6A82."""


class RecordNotFound(CardError):
    """6A83."""


class KeyNotFound(CardError):
    """6A88: referenced data (key, public key) not found."""


class WrongLength(CardError):
    """6700 (and 6Cxx reaching the caller)."""


class WrongData(CardError):
    """6A80: incorrect data field (e.g. new PIN equals the old one)."""


class InsNotSupported(CardError):
    """6D00."""


class ClaNotSupported(CardError):
    """6E00."""


class WrongParameters(CardError):
    """6A86 / 6B00 / 6A87: incorrect P1 P2 (or offset out of the file)."""


# ----------------------------------------------------------------- domain --


class WrongCardType(SscardError):
    """Not a social security card (-1)."""


class CardNotGenuine(SscardError):
    """Internal authentication failed (-21)."""


class _KindError(SscardError):
    """An exception covering a family of national codes, one per ``kind``."""

    kind: str | None

    def __init__(
        self,
        message: str = "",
        *,
        kind: str | None = None,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
    ) -> None:
        kinds: dict[str, dict[str, Any]] = load_table("errors")["kinds"][type(self)._kind_table()]
        if kind is None and national_code is not None:
            kind = next(
                (k for k, r in kinds.items() if r["national_code"] == national_code),
                None,
            )
        row: dict[str, Any] | None = None
        if kind is not None:
            row = kinds.get(kind)
            if row is None:
                raise ValueError(
                    f"{type(self).__name__}: unknown kind {kind!r}; known: {', '.join(sorted(kinds))}"
                )
        super().__init__(
            message or (row["en"] if row else ""),
            message_zh=message_zh if message_zh is not None else (row["zh"] if row else None),
            sw=sw,
            national_code=national_code
            if national_code is not None
            else (row["national_code"] if row else None),
        )
        self.kind = kind
        if row is not None:
            self.error_id = row["error_id"]  # type: ignore[misc]
        self._explicit_message = message
        self._explicit_zh = message_zh
        self._explicit_code = national_code

    @classmethod
    def _kind_table(cls) -> str:
        for klass in cls.__mro__:
            if klass.__name__ in load_table("errors")["kinds"]:
                return klass.__name__
        raise LookupError(f"apdu/data/errors.toml has no kinds for {cls.__name__}")

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        state["kind"] = self.kind
        return state


class KeySourceError(_KindError):
    """The PSAM / security module cannot serve the request.

    kinds: ``key_level`` (-24), ``no_psam`` (-2201), ``no_algorithm`` (-2202),
    ``no_reading_key`` (-2203), ``no_hsm_needed`` (-2204).
    """

    def __init__(
        self,
        message: str = "",
        *,
        kind: KeySourceKind | None = None,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
    ) -> None:
        super().__init__(
            message,
            kind=kind,
            message_zh=message_zh,
            sw=sw,
            national_code=national_code,
        )


class PinEntryError(_KindError):
    """PIN entry failed: ``cancelled`` (-31), ``timeout`` (-32), ``length`` (-33),
    ``mismatch`` (-34), ``initial_pin_use`` (-35), ``initial_pin_reuse`` (-36)."""

    def __init__(
        self,
        message: str = "",
        *,
        kind: PinEntryKind | None = None,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
    ) -> None:
        super().__init__(
            message,
            kind=kind,
            message_zh=message_zh,
            sw=sw,
            national_code=national_code,
        )


class InvalidInput(_KindError):
    """Bad caller input: ``parameter`` (-14), ``chars`` (-41), ``length`` (-42)."""

    def __init__(
        self,
        message: str = "",
        *,
        kind: InputKind | None = None,
        message_zh: str | None = None,
        sw: int | None = None,
        national_code: int | None = None,
    ) -> None:
        super().__init__(
            message,
            kind=kind,
            message_zh=message_zh,
            sw=sw,
            national_code=national_code,
        )
