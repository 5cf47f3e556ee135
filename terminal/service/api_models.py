"""Request and response bodies of the native API (they make the OpenAPI document).

Field names are those of interfaces.md (the flows' ``to_dict()``).  PINs
appear only in request bodies; no model echoes a PIN back, and validation
errors never quote the rejected value (:mod:`terminal.service.api`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuthenticityModel",
    "BasicInfoModel",
    "BlockRequest",
    "CardRequest",
    "CardStatusModel",
    "CardStatusRequest",
    "ErrorModel",
    "GenericReadModel",
    "GenericReadRequest",
    "GenericWriteModel",
    "GenericWriteRequest",
    "HandshakeRequest",
    "HandshakeResponse",
    "HealthModel",
    "HolderInfoModel",
    "LifeCycleModel",
    "LifeCycleRequest",
    "NationalBasModel",
    "PinChangeRequest",
    "PinOperationModel",
    "PinResetRequest",
    "PinStatusModel",
    "PinVerifyRequest",
    "ReaderModel",
    "ReadersModel",
    "VersionModel",
]

CARD_INFO = Field(
    None,
    max_length=100,
    description="national pCardInfo `card identification code|card number|`: the verb is refused (-22) "
    "when another card is in the reader",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CardRequest(_Strict):
    """Which card, and how long to wait for it."""

    reader: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="reader name substring; default: the configured reader",
    )
    itype: int = Field(3, ge=1, le=4, description="national iType: 1 contact, 2 contactless, 3/4 automatic")
    timeout: float | None = Field(
        None, ge=0, le=120, description="seconds to wait for a card (capped by the configuration)"
    )


class PinVerifyRequest(CardRequest):
    pin: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="the PIN; omit it to have the holder type it (PIN pad or PIN page)",
    )
    for_transaction: bool = Field(False, description="refuse while the initial PIN is set (-35)")


class PinChangeRequest(CardRequest):
    old_pin: str | None = Field(None, min_length=1, max_length=32)
    new_pin: str | None = Field(None, min_length=1, max_length=32)


class PinResetRequest(CardRequest):
    new_pin: str | None = Field(
        None, min_length=1, max_length=32, description="omit to reset to the initial PIN (last 6 of the SSN)"
    )
    card_info: str | None = CARD_INFO


class LifeCycleRequest(CardRequest):
    card_info: str | None = CARD_INFO


class BlockRequest(LifeCycleRequest):
    mode: Literal["temporary", "permanent"] = Field(
        "temporary", description="temporary loss report (临时挂失) or permanent block"
    )


class CardStatusRequest(CardRequest):
    key_counters: bool | None = Field(
        None,
        description="read the key try counters (needs the key source); default: when a key source is present",
    )


class GenericReadRequest(CardRequest):
    address: str = Field(
        ..., min_length=1, max_length=200, description="national pFileAddr, e.g. `3F00EF06|08|09|$`"
    )
    card_info: str | None = CARD_INFO


class GenericWriteRequest(GenericReadRequest):
    data: list[str] = Field(
        ..., min_length=1, max_length=32, description="one value per tag of the address, as national text"
    )


class HandshakeRequest(_Strict):
    client: str | None = Field(None, max_length=100, description="the calling application, for the log")
    api_version: str = Field(
        ..., pattern=r"^[0-9]{1,3}\.[0-9]{1,3}$", description="the API version the page needs"
    )
    features: list[str] = Field(default_factory=list, max_length=40)


# -- responses -------------------------------------------------------------------------------


class ErrorModel(BaseModel):
    error: str = Field(description="stable English identifier")
    message: str = Field(description="Chinese text for the user")
    message_en: str
    national_code: str = Field(
        pattern=r"^-?[0-9]{1,6}$",
        description='the national interface code as a string ("-51"; interfaces.md: codes as strings)',
    )
    sw: str | None = Field(None, description="card status word (hex) when a card answered")
    retries_left: int | None = Field(None, description="tries left after a wrong PIN (-51) or key (63Cx)")
    retry_after: float | None = Field(
        None, description="seconds to wait after a PIN rate-limit refusal (429)"
    )


class ReaderModel(BaseModel):
    name: str
    kind: Literal["contact", "contactless", "psam", "unknown"]
    card_present: bool
    atr: str | None
    card_kind: Literal["social_security", "psam", "other"] | None


class ReadersModel(BaseModel):
    readers: list[ReaderModel]


class BasicInfoModel(BaseModel):
    generation: int
    spec_version: str
    card_type: str
    card_id: str
    region_code: str
    init_org: str
    issue_date: str
    expiry_date: str
    card_number: str
    atr: str


class HolderInfoModel(BaseModel):
    ssn: str
    name: str
    name_extension: str
    gender: str
    gender_text: str
    ethnicity: str
    ethnicity_text: str
    birthplace: str
    birth_date: str


class NationalBasModel(BaseModel):
    pOutInfo: str = Field(description="the iReadCardBas string, every field followed by `|`")
    fields: list[str]


class PinStatusModel(BaseModel):
    state: Literal["ok", "initial", "blocked"]
    retries_left: int
    max_tries: int


class PinOperationModel(PinStatusModel):
    operation: Literal["verify", "change", "reset", "unblock"]
    ok: bool
    entry: Literal["body", "pinpad", "page", "auto", "scripted", "none"] = Field(
        "none",
        description="how the PIN was given: in the body, typed at the terminal (pinpad, page, auto: the "
        "PIN pad where the reader has one, else the PIN page; scripted: a test provider), or none",
    )


class LifeCycleModel(BaseModel):
    operation: str
    life_cycle_before: str
    life_cycle: str | None
    life_cycle_text: str | None


class KeyCounterModel(BaseModel):
    kid: str
    role: str
    tries_left: int
    max_tries: int


class CardStatusModel(BaseModel):
    generation: int
    profile_version: str
    life_cycle: str
    life_cycle_text: str
    pin: PinStatusModel
    keys: list[KeyCounterModel] | None


class AuthenticityModel(BaseModel):
    genuine: bool
    symmetric: bool
    sm2: bool | None
    certificate_subject: str | None
    certificate_serial: str | None
    anchor_subject: str | None


class RecordModel(BaseModel):
    tag: str
    value: str


class GenericReadModel(BaseModel):
    file: str
    records: list[RecordModel]
    national: str


class GenericWriteModel(BaseModel):
    file: str
    tags: list[str]


class PcscHealth(BaseModel):
    reachable: bool
    error: str | None


class KeySourceHealth(BaseModel):
    kind: str
    present: bool
    terminal_number: str
    error: str | None


class HealthModel(BaseModel):
    status: Literal["ok", "degraded"]
    service: str
    version: str
    api_version: str
    pcscd: PcscHealth
    readers: list[ReaderModel]
    key_source: KeySourceHealth
    pin_entry: str
    terminal: dict[str, str]
    ports: dict[str, int]
    versions: dict[str, str]
    uptime_seconds: float


class VersionModel(BaseModel):
    service: str
    version: str
    api_version: str
    features: list[str]


class HandshakeResponse(BaseModel):
    compatible: bool
    service_version: str
    api_version: str
    missing_features: list[str]
    message: str
