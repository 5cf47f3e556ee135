"""Status words the card OS and the PSAM answer (all listed in
``apdu/data/status_words.toml``) and the exception that carries one."""

from __future__ import annotations

SW_OK = 0x9000
SW_BYTES_REMAINING = 0x6100  # | remaining length
SW_END_OF_FILE = 0x6282
SW_SELECTED_BLOCKED = 0x6283
SW_VERIFY_FAILED = 0x63C0  # | tries left
SW_MISMATCH = 0x6300
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_INCOMPATIBLE_FILE = 0x6981
SW_SECURITY_STATUS = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_NO_CHALLENGE = 0x6984
SW_CONDITIONS = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_SM_WRONG = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_DATA_NOT_FOUND = 0x6A88
SW_WRONG_OFFSET = 0x6B00
SW_WRONG_LE = 0x6C00  # | exact length
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_PERMANENTLY_BLOCKED = 0x9303


class CardStatus(Exception):
    """Raised inside a command handler to answer ``sw`` (with optional data)."""

    __slots__ = ("data", "sw")

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw
        self.data = data


__all__ = ["CardStatus", *sorted(name for name in dir() if name.startswith("SW_"))]
