"""The service's registry journal through an outage of the registry database.

:class:`OutageTolerantJournal` wraps the registry journal hook.  While the
database cannot be reached (:class:`~terminal.registry.errors.RegistryStorageError`):

- a flow that needs the registry (``needs_registry`` in
  ``terminal/data/presentation.toml``: PIN, life-cycle, write, wallet
  operations) is refused at its journal ``begin``, before any command is
  sent, with :class:`~terminal.registry.errors.RegistryUnavailable` (-1166,
  "the registry cannot be reached, cannot do <operation>, try later");
- a flow that does not (reads, status queries, authenticity), and the
  presentation gate's own registry check (``card.present``), runs without a
  journal entry (logged);
- an entry that was begun but cannot be completed stays open in the
  database: the card operation is not reported as failed, and the next
  session settles the entry from the card's state
  (:func:`terminal.flows.resolve_torn`), as after a crash.

Once the database answers again, every flow is journaled as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from terminal.journal_hook import DetailValue, IncompleteEntry, JournalResult, RegistryJournal
from terminal.presentation import PresentationPolicy
from terminal.registry.errors import RegistryStorageError, RegistryUnavailable
from terminal.service._data import load_data

__all__ = ["OutageTolerantJournal", "registry_unavailable"]

log = logging.getLogger("sscard.service.journal")


def registry_unavailable(operation: str, exc: RegistryStorageError) -> RegistryUnavailable:
    """The refusal of ``operation`` while the registry cannot be reached (the
    storage error's id as detail: never its text, which names the database)."""
    label = str(load_data("events")["operations"].get(operation, operation))
    return RegistryUnavailable(exc.error_id, operation=operation, operation_zh=label, detail_zh=exc.error_id)


class OutageTolerantJournal:
    """A :class:`~terminal.journal_hook.JournalHook` over ``inner``; see the module docstring."""

    def __init__(self, inner: RegistryJournal, policy: PresentationPolicy | None = None) -> None:
        self.inner = inner
        self.policy = policy if policy is not None else PresentationPolicy.load()

    def begin(self, operation: str, *, card_id: str | None, details: Mapping[str, DetailValue]) -> int | None:
        try:
            return self.inner.begin(operation, card_id=card_id, details=details)
        except RegistryStorageError as exc:
            # The gate's own check (card.present) is never refused: an unreachable
            # registry is its answer, and only the flows that need it are refused.
            presenting = operation == self.policy.journal_operation
            if not presenting and self.policy.rule(operation, details).needs_registry:
                raise registry_unavailable(operation, exc) from exc
            log.warning("registry unreachable (%s): %s runs without a journal entry", exc.error_id, operation)
            return None

    def complete(
        self,
        entry_id: int | None,
        *,
        result: JournalResult,
        national_code: int = 0,
        sw: int | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> None:
        try:
            self.inner.complete(entry_id, result=result, national_code=national_code, sw=sw, details=details)
        except RegistryStorageError as exc:
            log.error("journal entry %s stays open (registry unreachable: %s)", entry_id, exc.error_id)

    def mark_torn(self, entry_id: int | None, note: str) -> None:
        try:
            self.inner.mark_torn(entry_id, note)
        except RegistryStorageError as exc:
            log.error("journal entry %s stays open, not marked torn (%s)", entry_id, exc.error_id)

    def incomplete(self, card_id: str) -> list[IncompleteEntry]:
        return self.inner.incomplete(card_id)

    def resolve(self, entry_id: int, *, resolution: str, result: JournalResult, note: str) -> None:
        self.inner.resolve(entry_id, resolution=resolution, result=result, note=note)
