"""Opening the card for a CLI command: reader, key source, journal, registry.

:func:`card_options` adds the options every card command shares
(``--psam-reader``, ``--key-source``, ``--hsm-command``, ``--key-file``,
``--journal``);
:func:`open_card` picks the reader (global ``--reader``, else ``[cli]
reader``; ``--itype`` / ``[cli] itype`` applies the national iType rule among
the readers matched; with neither, the only card reader or the iType 3 rule:
the contact reader holding a card, then a contactless one; PSAM readers
never), opens a
:class:`~terminal.session.CardSession` with the key source
(:class:`~terminal.cli_commands.keys.CliKeySource`) and the journal hook,
and, with ``journal = "registry"``, the registry's presentation gate
(:class:`~terminal.presentation.PresentationGate`): what an earlier tear left
open is settled, the registry is asked about the card, a card it refuses
(reported lost, replaced, cancelled) has its application blocked on the card
(temporarily for a formal loss, permanently for a replaced or cancelled
card) and a temporarily blocked card it allows again is unblocked.  A flow
the gate does not admit on a refused card stops the command with
:class:`~terminal.cli_commands.errors.PresentationRefused` (exit 10); the
status queries and ``block`` still run (``gate=False``: the registry's
answer is a note on stderr instead).  Without a registry no gate is used.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from terminal.cli_commands.errors import PresentationRefused
from terminal.cli_commands.output import progress, text
from terminal.cli_commands.state import cli_state

if TYPE_CHECKING:
    from sm_crypto.x509 import Sm2Certificate
    from terminal.cli_commands.config import CliSettings
    from terminal.cli_commands.keys import CliKeySource
    from terminal.journal_hook import JournalHook
    from terminal.presentation import Presentation, PresentationGate
    from terminal.readers import ReaderInfo
    from terminal.registry import Registry
    from terminal.registry.errors import CardRefused
    from terminal.session import CardSession

__all__ = ["CardContext", "CardOptions", "card_options", "load_anchors", "open_card", "select_card_reader"]


@dataclass(frozen=True, slots=True)
class CardOptions:
    """The card options of one command (None: take the configuration's)."""

    psam_reader: str | None = None
    key_source: str | None = None
    key_file: str | None = None
    hsm_command: str | None = None
    journal: str | None = None
    itype: int | None = None

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> CardOptions:
        return cls(
            psam_reader=kwargs.pop("psam_reader", None),
            key_source=kwargs.pop("key_source", None),
            key_file=kwargs.pop("key_file", None),
            hsm_command=kwargs.pop("hsm_command", None),
            journal=kwargs.pop("journal", None),
            itype=kwargs.pop("itype", None),
        )


def card_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--itype``, ``--psam-reader``, ``--key-source``, ``--hsm-command``, ``--key-file``,
    ``--journal``."""
    options = [
        click.option(
            "--itype",
            type=click.IntRange(1, 4),
            help="全国接口 iType：1 接触，2 非接触，3 自动（接触优先），4 自动（非接触优先）。"
            "National iType rule: 1 contact, 2 contactless, 3 auto contact first, 4 auto contactless first.",
        ),
        click.option(
            "--psam-reader",
            metavar="TEXT",
            help="PSAM读卡器名称的一部分。Part of the PSAM reader's name (default: the first PSAM found).",
        ),
        click.option(
            "--key-source",
            type=click.Choice(["auto", "psam", "hsm", "dev_key_file", "software_hsm", "none"]),
            help="密钥来源。Where the card keys come from (default auto: the PSAM, else --key-file).",
        ),
        click.option(
            "--hsm-command",
            metavar="CMD",
            help="加密机程序：每行一个请求、一行应答（--key-source hsm）。"
            "Security module program: one step-1 request per line in, one answer per line out.",
        ),
        click.option(
            "--key-file",
            metavar="PATH",
            type=click.Path(dir_okay=False),
            help="开发用密钥文件（严禁用于生产）。sscard-issuer-keys file (development only).",
        ),
        click.option(
            "--journal",
            type=click.Choice(["none", "registry"]),
            help="记录操作日志并查询登记库。Journal the flow and check the card with the registry.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@dataclass
class CardContext:
    """What a card command works with."""

    session: CardSession
    reader: ReaderInfo
    keys: CliKeySource | None


def select_card_reader(
    ctx: click.Context, *, include_psam: bool = False, itype: int | None = None
) -> ReaderInfo:
    """The reader of the card (see the module docstring); ``itype`` (else
    ``[cli] itype``, 0 = unset) applies the national iType rule among the
    readers ``--reader`` matches (all readers without it)."""
    from terminal.readers import list_readers, select_reader

    state = cli_state(ctx)
    settings = state.settings()
    pattern = state.reader or settings.reader or None
    with progress(ctx, "readers"):
        readers = list_readers()
    return select_reader(
        readers, pattern=pattern, itype=itype or settings.itype or None, include_psam=include_psam
    )


def load_anchors(paths: tuple[str, ...]) -> tuple[Sm2Certificate, ...]:
    """CA certificates (PEM, one or more, or DER) for card authenticity."""
    from apdu.errors import InvalidInput
    from sm_crypto.errors import CryptoError
    from sm_crypto.x509 import Sm2Certificate, load_pem_certificates

    anchors: list[Sm2Certificate] = []
    for name in paths:
        path = Path(name).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(
                f"trust anchor {path}: cannot read ({exc.strerror})",
                kind="parameter",
                message_zh=f"无法读取根证书文件 {path}",
            ) from None
        try:
            if b"-----BEGIN" in data:
                anchors.extend(load_pem_certificates(data))
            else:
                anchors.append(Sm2Certificate.from_der(data))
        except (CryptoError, ValueError) as exc:
            raise InvalidInput(
                f"trust anchor {path}: not a certificate ({type(exc).__name__})",
                kind="parameter",
                message_zh=f"根证书文件 {path} 不是证书",
            ) from None
    return tuple(anchors)


def _key_source(
    ctx: click.Context, settings: CliSettings, options: CardOptions, tracer: Any
) -> CliKeySource | None:
    from terminal.cli_commands.keys import CliKeySource

    kind = options.key_source or settings.key_source
    if options.key_file and not options.key_source and kind not in ("dev_key_file", "software_hsm"):
        kind = "dev_key_file"
    if options.hsm_command and not options.key_source:
        kind = "hsm"
    if kind == "none":
        return None
    return CliKeySource(
        kind,
        psam_reader=options.psam_reader or settings.psam_reader,
        key_file=options.key_file or settings.key_file,
        hsm_command=options.hsm_command or settings.hsm_command,
        terminal_number=settings.terminal_number,
        tracer=tracer,
        busy=lambda: progress(ctx, "psam"),
    )


@dataclass(frozen=True, slots=True)
class _Registered:
    """The registry of a ``--journal registry`` command: its journal hook and gate."""

    registry: Registry
    journal: JournalHook
    gate: PresentationGate


def _registry(ctx: click.Context, settings: CliSettings, options: CardOptions) -> _Registered | None:
    kind = options.journal or settings.journal
    if kind != "registry":
        return None
    from terminal.presentation import PresentationGate
    from terminal.registry import Actor, open_registry

    url = os.environ.get("SSCARD_DB_URL") or settings.registry_url
    with progress(ctx, "registry"):
        registry, journal = open_registry(url)
    actor = Actor(
        operator=settings.operator or _login_name(),
        terminal=settings.terminal or socket.gethostname() or "sscard-cli",
    )
    gate = PresentationGate(registry, actor=actor)
    return _Registered(registry, gate.journal_hook(journal), gate)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "sscard"


def _report(presentation: Presentation, *, gate: bool) -> None:
    """Notes on stderr: settled tears, the registry's answer when the command
    runs anyway (an allowed card with a restriction; a refused card under
    ``gate=False``), and a block or unblock the gate did on the card."""
    if presentation.settled is not None:
        for entry in presentation.settled.entries:
            key = "torn_resolved" if entry.resolved else "torn_unresolved"
            click.echo(
                text("words", key).format(
                    entry_id=entry.entry_id, operation=entry.operation, outcome=entry.outcome
                ),
                err=True,
            )
    decision = presentation.decision
    if decision is not None and (
        (decision.allowed and decision.reason_id not in ("card_ok", "card_not_registered"))
        or (not decision.allowed and not gate)
    ):
        click.echo(text("words", "registry_notice").format(message=decision.message_zh), err=True)
    if presentation.enforcement in ("blocked", "unblocked", "failed"):
        key = f"presentation_{presentation.enforcement}"
        click.echo(text("words", key).format(mode=presentation.block_mode or ""), err=True)


def _refused(exc: CardRefused, presentation: Presentation | None) -> PresentationRefused:
    decision = presentation.decision if presentation is not None else None
    return PresentationRefused(
        f"the registry refuses card {exc.fields.get('card_id', '?')}: {exc.reason_id}"
        + (f" ({decision.message_en})" if decision is not None else ""),
        reason=exc.reason_id,
        block_on_card=decision.block_on_card if decision is not None else False,
        blocked=exc.blocked,
        message_zh=decision.message_zh if decision is not None else exc.message_zh,
        national_code=exc.national_code,
    )


@contextmanager
def open_card(
    ctx: click.Context,
    options: CardOptions,
    *,
    gate: bool = True,
    anchors: tuple[str, ...] = (),
) -> Iterator[CardContext]:
    """The card session of a command (closed, with the key source, at the end).

    ``gate=False``: a command a refused card still allows (``status``,
    ``block``): the registry's refusal is a note on stderr.  A flow the gate
    refuses inside the block is raised as :class:`PresentationRefused`."""
    from apdu.trace import Tracer
    from terminal.journal_hook import NullJournal
    from terminal.registry.errors import CardRefused
    from terminal.session import CardSession

    state = cli_state(ctx)
    settings = state.settings()
    reader = select_card_reader(ctx, itype=options.itype)
    tracer = Tracer(reader=reader.name) if state.verbose >= 2 else None
    with ExitStack() as stack:
        keys = _key_source(ctx, settings, options, Tracer(reader="PSAM") if tracer is not None else None)
        if keys is not None:
            stack.callback(keys.close)
        registered = _registry(ctx, settings, options)
        if registered is not None:
            stack.callback(registered.registry.close)
        with progress(ctx, "connect"):
            session = CardSession.open(
                reader,
                key_source=keys,
                journal=registered.journal if registered is not None else NullJournal(),
                tracer=tracer,
                trust_anchors=load_anchors(anchors or settings.trust_anchors),
                terminal_number=settings.terminal_number or None,
                device_number=settings.device_number,
                gate=registered.gate if registered is not None else None,
            )
        stack.callback(session.close)
        if session.presentation is not None:
            _report(session.presentation, gate=gate)
        try:
            yield CardContext(session=session, reader=reader, keys=keys)
        except CardRefused as exc:
            raise _refused(exc, session.presentation) from None
