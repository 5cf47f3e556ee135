"""The native JSON API under ``/api/v1/``: one POST per business verb, plus
readers, health and the version handshake.

Every route needs the installation's bearer token.  Card verbs run in a
worker thread through :class:`terminal.service.cards.CardRunner` (wait for the
card, queue per card, one session and one PC/SC transaction per flow) and
answer the flow's ``to_dict()``; errors answer the JSON error body with the
status of ``data/http_status.toml``.  No route sends raw APDUs.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from apdu.errors import SscardError
from terminal import flows
from terminal.readers import ReaderInfo
from terminal.service import api_models as m
from terminal.service._data import load_data
from terminal.service.cards import CardTarget
from terminal.service.context import ServiceContext
from terminal.service.errors import ApiVersionUnsupported, Unauthorized
from terminal.service.events import card_kind
from terminal.service.pinpage import wipe
from terminal.session import CardSession

__all__ = [
    "API_PREFIX",
    "API_VERSION_HEADER",
    "api_version",
    "build_router",
    "card_target",
    "compare_versions",
    "native_dependencies",
    "service_version",
]

API_PREFIX = "/api/v1"
API_VERSION_HEADER = "X-Sscard-Api-Version"
VERSION_PATTERN = r"^[0-9]{1,3}\.[0-9]{1,3}$"
T = TypeVar("T")

# Bodies whose fields all have defaults may be omitted (an empty POST reads the card in the
# configured reader with the default wait).
CardBody = Annotated[m.CardRequest, Body(default_factory=m.CardRequest)]
CardStatusBody = Annotated[m.CardStatusRequest, Body(default_factory=m.CardStatusRequest)]
LifeCycleBody = Annotated[m.LifeCycleRequest, Body(default_factory=m.LifeCycleRequest)]
BlockBody = Annotated[m.BlockRequest, Body(default_factory=m.BlockRequest)]
PinVerifyBody = Annotated[m.PinVerifyRequest, Body(default_factory=m.PinVerifyRequest)]
PinChangeBody = Annotated[m.PinChangeRequest, Body(default_factory=m.PinChangeRequest)]
PinResetBody = Annotated[m.PinResetRequest, Body(default_factory=m.PinResetRequest)]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorModel, "description": text}
    for code, text in (
        (
            400,
            "bad input (national -14 / -41 / -42 / -33), or a PIN in the URL, or an API version "
            "this service cannot serve",
        ),
        (401, "missing or wrong bearer token"),
        (403, "refused by the Origin / Host / loopback checks"),
        (404, "no reader matches (national -12)"),
        (409, "the card refused or is absent (-2, -1, -51, -52, -SW ...)"),
        (422, "the request body does not fit the schema"),
        (429, "too many PIN attempts on this card (Retry-After)"),
        (503, "PC/SC or the key source is not available"),
    )
}

_bearer = HTTPBearer(auto_error=False, description="the installation token (see docs/service.md)")


def service_version() -> str:
    try:
        return metadata.version("sscard")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def api_version() -> str:
    return str(load_data("api")["api_version"])


def compare_versions(needed: str, offered: str) -> int:
    """-1 when ``offered`` is too old for ``needed``, 1 when its major is newer, 0 compatible."""
    need_major, need_minor = (int(p) for p in needed.split("."))
    have_major, have_minor = (int(p) for p in offered.split("."))
    if have_major > need_major:
        return 1
    if have_major < need_major or have_minor < need_minor:
        return -1
    return 0


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("sscard", "fastapi", "uvicorn", "pyscard", "cryptography"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def reader_dict(info: ReaderInfo) -> dict[str, Any]:
    return {**info.to_dict(), "card_kind": card_kind(info.name, info.atr) if info.card_present else None}


async def require_version(
    needed: str | None = Header(
        None,
        alias=API_VERSION_HEADER,
        pattern=VERSION_PATTERN,
        description="the API version the calling page needs (MAJOR.MINOR); refused (400) when this "
        "service cannot serve it",
    ),
) -> None:
    """The version handshake of every native route (``X-Sscard-Api-Version``)."""
    if needed is not None and compare_versions(needed, api_version()) != 0:
        raise ApiVersionUnsupported(f"API {needed} requested, this service offers {api_version()}")


def native_dependencies(ctx: ServiceContext) -> list[Any]:
    """The dependencies every router under ``/api/v1/`` declares: the
    installation's bearer token and the API version header (the native,
    issuance and wallet routers share them)."""

    async def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("no bearer token")
        if not ctx.token.matches(credentials.credentials):
            raise Unauthorized("wrong bearer token")

    return [Depends(require_token), Depends(require_version)]


def card_target(ctx: ServiceContext, body: m.CardRequest) -> CardTarget:
    """Where a verb's card is: the body's reader / iType, its wait capped by
    ``service.card_wait_max_seconds`` (the configured wait when it gives none)."""
    config = ctx.config
    wait = config.card_wait_seconds if body.timeout is None else body.timeout
    return CardTarget(reader=body.reader, itype=body.itype, wait=min(wait, config.card_wait_max_seconds))


def build_router(ctx: ServiceContext, app: FastAPI) -> APIRouter:
    """The routes of the native API bound to one service context (``app``
    gives the OpenAPI document, served behind the token like every route)."""

    router = APIRouter(prefix=API_PREFIX, dependencies=native_dependencies(ctx), responses=ERRORS)
    config = ctx.config

    async def run(operation: str, body: m.CardRequest, fn: Callable[[CardSession], T]) -> T:
        return await run_in_threadpool(partial(ctx.runner.run, operation, card_target(ctx, body), fn))

    def checked(card_info: str | None, fn: Callable[[CardSession], T]) -> Callable[[CardSession], T]:
        def call(session: CardSession) -> T:
            if card_info is not None:
                flows.check_card_info(session, card_info)
            return fn(session)

        return call

    # -- service ------------------------------------------------------------------------------

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @router.get("/version", response_model=m.VersionModel, summary="Service and API version")
    async def version() -> dict[str, Any]:
        return {
            "service": "sscard",
            "version": service_version(),
            "api_version": api_version(),
            "features": list(load_data("api")["features"]),
        }

    @router.post("/handshake", response_model=m.HandshakeResponse, summary="Can this service serve the page?")
    async def handshake(body: m.HandshakeRequest) -> dict[str, Any]:
        data = load_data("api")
        offered = api_version()
        verdict = compare_versions(body.api_version, offered)
        missing = [f for f in body.features if f not in data["features"]]
        texts = data["texts"]
        if verdict < 0:
            message = texts["too_old"]
        elif verdict > 0:
            message = texts["too_new"]
        elif missing:
            message = texts["missing_features"]
        else:
            message = texts["compatible"]
        return {
            "compatible": verdict == 0 and not missing,
            "service_version": service_version(),
            "api_version": offered,
            "missing_features": missing,
            "message": message,
        }

    @router.get("/health", response_model=m.HealthModel, summary="PC/SC, readers, key source, versions")
    async def health() -> dict[str, Any]:
        def probe() -> dict[str, Any]:
            readers: list[dict[str, Any]] = []
            pcsc: dict[str, Any] = {"reachable": True, "error": None}
            try:
                readers = [reader_dict(r) for r in ctx.backend.readers()]
            except SscardError as exc:
                pcsc = {"reachable": False, "error": exc.error_id}
            keys = (
                ctx.keys.status()
                if pcsc["reachable"] or ctx.keys.kind != "psam"
                else {
                    "kind": ctx.keys.kind,
                    "present": False,
                    "terminal_number": ctx.keys.terminal_number,
                    "error": pcsc["error"],
                }
            )
            return {"pcscd": pcsc, "readers": readers, "key_source": keys}

        probed = await run_in_threadpool(probe)
        key_ok = probed["key_source"]["present"] or ctx.keys.kind == "none"
        return {
            "status": "ok" if probed["pcscd"]["reachable"] and key_ok else "degraded",
            "service": "sscard",
            "version": service_version(),
            "api_version": api_version(),
            **probed,
            "pin_entry": config.pin_entry,
            "terminal": {
                "zdbm": config.zdbm,
                "terminal_number": ctx.keys.terminal_number,
                "device_number": config.device_number,
            },
            "ports": {"http": config.port, "national": config.national_port},
            "versions": _versions(),
            "uptime_seconds": round(time.time() - ctx.started, 1),
        }

    @router.get("/readers", response_model=m.ReadersModel, summary="Readers, their kinds and cards")
    async def readers() -> dict[str, Any]:
        infos = await run_in_threadpool(ctx.backend.readers)
        return {"readers": [reader_dict(r) for r in infos]}

    # -- reading ----------------------------------------------------------------------------------

    @router.post("/card/basic", response_model=m.BasicInfoModel, summary="Card identification (EF05)")
    async def card_basic(body: CardBody) -> dict[str, Any]:
        result = await run("card.read_basic", body, flows.read_basic)
        return result.to_dict()

    @router.post("/card/holder", response_model=m.HolderInfoModel, summary="Holder information (EF06)")
    async def card_holder(body: CardBody) -> dict[str, Any]:
        result = await run("card.read_holder", body, flows.read_holder)
        return result.to_dict()

    @router.post("/card/national", response_model=m.NationalBasModel, summary="The iReadCardBas string")
    async def card_national(body: CardBody) -> dict[str, Any]:
        text = await run("card.read_national", body, flows.read_card_bas)
        return {"pOutInfo": text, "fields": text.split("|")[:-1]}

    @router.post("/card/authenticate", response_model=m.AuthenticityModel, summary="Is the card genuine?")
    async def card_authenticate(body: CardBody) -> dict[str, Any]:
        result = await run("card.authenticate", body, flows.authenticate_card)
        return result.to_dict()

    @router.post("/card/status", response_model=m.CardStatusModel, summary="Life cycle, PIN and key counters")
    async def card_status(body: CardStatusBody) -> dict[str, Any]:
        result = await run(
            "card.status", body, lambda s: flows.card_status(s, key_counters=body.key_counters)
        )
        return result.to_dict()

    @router.post("/card/read", response_model=m.GenericReadModel, summary="Generic read by national address")
    async def card_read(body: m.GenericReadRequest) -> dict[str, Any]:
        result = await run(
            "card.read", body, lambda s: flows.read_generic(s, body.address, card_info=body.card_info)
        )
        return result.to_dict()

    @router.post("/card/write", response_model=m.GenericWriteModel, summary="Generic write (maintenance key)")
    async def card_write(body: m.GenericWriteRequest) -> dict[str, Any]:
        result = await run(
            "card.write",
            body,
            lambda s: flows.write_generic(s, body.address, body.data, card_info=body.card_info),
        )
        return result.to_dict()

    # -- life cycle ---------------------------------------------------------------------------------

    @router.post("/card/activate", response_model=m.LifeCycleModel, summary="Activate the application (启用)")
    async def card_activate(body: LifeCycleBody) -> dict[str, Any]:
        result = await run("card.activate", body, checked(body.card_info, flows.activate))
        return result.to_dict()

    @router.post("/card/block", response_model=m.LifeCycleModel, summary="Loss report / block (挂失)")
    async def card_block(body: BlockBody) -> dict[str, Any]:
        result = await run("card.block", body, checked(body.card_info, lambda s: flows.block(s, body.mode)))
        return result.to_dict()

    @router.post("/card/unblock", response_model=m.LifeCycleModel, summary="Release a temporary block")
    async def card_unblock(body: LifeCycleBody) -> dict[str, Any]:
        result = await run("card.unblock", body, checked(body.card_info, flows.unblock))
        return result.to_dict()

    # -- PIN ------------------------------------------------------------------------------------------

    @router.post("/pin/status", response_model=m.PinStatusModel, summary="Service password state")
    async def pin_status(body: CardBody) -> dict[str, Any]:
        result = await run("pin.status", body, flows.pin_status)
        return result.to_dict()

    @router.post("/pin/verify", response_model=m.PinOperationModel, summary="Verify the service password")
    async def pin_verify(body: PinVerifyBody) -> dict[str, Any]:
        pin = bytearray(body.pin.encode()) if body.pin is not None else None
        body.pin = None
        entry = "body" if pin is not None else ctx.desk.provider.name
        try:
            result = await run(
                "pin.verify",
                body,
                lambda s: ctx.desk.verify(s, pin=pin, for_transaction=body.for_transaction),
            )
        finally:
            if pin is not None:
                wipe(pin)
        return {**result.to_dict(), "entry": entry}

    @router.post("/pin/change", response_model=m.PinOperationModel, summary="Change the service password")
    async def pin_change(body: PinChangeBody) -> dict[str, Any]:
        old = bytearray(body.old_pin.encode()) if body.old_pin is not None else None
        new = bytearray(body.new_pin.encode()) if body.new_pin is not None else None
        body.old_pin = body.new_pin = None
        entry = "body" if old is not None else ctx.desk.provider.name
        try:
            result = await run("pin.change", body, lambda s: ctx.desk.change(s, old=old, new=new))
        finally:
            wipe(*(b for b in (old, new) if b is not None))
        return {**result.to_dict(), "entry": entry}

    @router.post("/pin/reset", response_model=m.PinOperationModel, summary="Reset the service password (PRK)")
    async def pin_reset(body: PinResetBody) -> dict[str, Any]:
        new = body.new_pin
        body.new_pin = None
        result = await run(
            "pin.reset", body, checked(body.card_info, lambda s: flows.reset_pin(s, new_pin=new))
        )
        return result.to_dict()

    @router.post(
        "/pin/unblock", response_model=m.PinOperationModel, summary="Unblock the service password (PUK)"
    )
    async def pin_unblock(body: LifeCycleBody) -> dict[str, Any]:
        result = await run("pin.unblock", body, checked(body.card_info, flows.unblock_pin))
        return result.to_dict()

    return router
