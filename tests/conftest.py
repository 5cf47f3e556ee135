"""Project-wide fixtures.

``pcsc_stack`` (session scope) is the real PC/SC stack: a running ``pcscd``
with the vsmartcard vpcd readers.  If no pcscd runs, the fixture starts one
with our 16-slot vpcd configuration and stops it at the end of the session;
a pcscd that was already running (a system one, or ``scripts/pcscd-up``) is
used and left alone.

vpcd slot N is TCP 35963 + N.  Each test area owns a disjoint range of slots
so areas never disturb each other's virtual cards, even when several pytest
runs share one pcscd:

=================  ======
area               slots
=================  ======
emulator_pcsc      0-3
terminal           4-7
cli                8-11
service            12-13
apdu live, bench  14-15
foundation         15 (and 12 briefly)
issuance           0-3   (shares with emulator_pcsc; areas run one after another)
wallet             8-11  (shares with cli)
reliability        8-15  (shares; its soak needs several cards and a PSAM)
terminal_registry  6-7   (inside terminal's range; areas run one after another)
=================  ======

Use ``pcsc_stack.reader_for_slot(n)`` for the PC/SC reader name and
``pcsc_stack.port_for_slot(n)`` for the TCP port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import settings

# The secrets sweep of the whole run (issue 11): collects logs, traces, journal rows and
# exception texts, greps them for the tests' PINs, keys and SSNs last, fails the run on a hit.
from secrets_sweep import pytest_configure, pytest_runtest_setup, pytest_sessionfinish  # noqa: F401

from emulator.stack import PcscStack

# No per-example deadline: these machines are shared and noisy, and a time
# limit on one example is a timed assertion (a load spike of a few seconds
# failed a 200 ms deadline).  Tests that need more examples set their own.
settings.register_profile("sscard", deadline=None)
settings.load_profile("sscard")

# Loggers the service and the CLI configure for themselves (handlers, level, no
# propagation): restored after every test, so that one test's configuration
# does not hide the next tests' log records from the secrets sweep's root handler.
_CONFIGURED_LOGGERS = ("sscard", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


SLOT_RANGES: dict[str, range] = {
    "emulator_pcsc": range(0, 4),
    "terminal": range(4, 8),
    "cli": range(8, 12),
    "service": range(12, 14),
    "apdu_live": range(14, 16),
    "foundation": range(15, 16),
    "issuance": range(0, 4),
    "wallet": range(8, 12),
    "reliability": range(8, 16),
    "terminal_registry": range(6, 8),
}


@pytest.fixture(scope="session")
def pcsc_stack() -> Iterator[PcscStack]:
    stack = PcscStack(min_slots=16)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
