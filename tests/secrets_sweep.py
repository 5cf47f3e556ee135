"""The secrets sweep of the test run (issue 11, docs/reliability.md).

During the whole pytest session this plugin collects every text that the
product writes where people or files see it and no secret may go:

* every log record (any logger, any thread; the ``sscard`` loggers are set
  to DEBUG before each test, so the APDU trace lines are made too), with its
  traceback text;
* every APDU trace line (:class:`apdu.trace.Tracer`, whether or not it is
  logged or written to a transcript);
* every journal row written (memory and registry journals: operation,
  details, notes);
* the text of every sscard exception (``SscardError``: message, Chinese
  message, ``to_dict``);
* at the end, the log and transcript files under the run directory
  (``$SSCARD_RUN_DIR`` or ``/tmp/sscard-pcsc-<uid>``) and the session's
  temporary directory.

When the session finishes (after every fixture is torn down; ``trylast``)
it greps all of it for the secrets the tests use (:func:`run_secrets`:
every PIN constant and PIN value of the tests' sources and data files, the
demo holders' SSNs and initial PINs, every full SSN written in the tests,
the demo issuer and PSAM keys and the demo cards' diversified keys) and
fails the run (exit status 1) if any appears.  The report names the secret
by kind and origin and the place it was found, never the secret itself.

The checker is :class:`Sweep` (pure: ``add`` texts, ``findings``); the
hooks at the end of this module wire it into pytest (tests/conftest.py
imports them).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
CHUNK = 2000
FILE_LIMIT = 32 * 1024 * 1024
FILE_SUFFIXES = (".log", ".trace", ".jsonl")
# a PIN constant of the tests' sources: NAME_WITH_PIN = "123456" (also in tuples / lists after it)
_PIN_ASSIGN = re.compile(r"^\s*([A-Z][A-Z0-9_]*PIN[A-Z0-9_]*)\s*(?::[^=]*)?=\s*(.+)$", re.M)
_DIGITS = re.compile(r"""["'](\d{4,12})["']""")
_SSN_LITERAL = re.compile(r"""["'](\d{17}[\dXx])["']""")
_HEX = "0-9A-Fa-f"


@dataclass(frozen=True)
class Secret:
    """A secret to look for: ``kind`` (pin, ssn, key), where it comes from
    (never the value), and the value."""

    kind: str
    origin: str
    value: str = field(repr=False)

    def patterns(self) -> list[str]:
        value = re.escape(self.value)
        if self.kind == "pin":
            # as a number of its own, and as a PIN block inside APDU hex (VERIFY / CHANGE / RELOAD)
            return [
                rf"(?<![{_HEX}]){value}(?![{_HEX}])",
                rf"(?i:0020000[0-9a-f][0-9a-f]{{2}}){value}",
                rf"(?i:805e0[01][0-9a-f]{{2}}[0-9a-f]{{2}}){value}",
                rf"(?i:ff){value}(?![{_HEX}])",
                rf"{value}(?i:ff)",
            ]
        if self.kind == "key":
            return [f"(?i:{value})"]
        return [value]


@dataclass(frozen=True)
class Finding:
    kind: str
    origin: str
    source: str
    excerpt: str

    def line(self) -> str:
        return f"{self.kind} ({self.origin}) in {self.source}: {self.excerpt}"


def _mask(text: str, start: int, end: int) -> str:
    before = text[max(0, start - 30) : start].replace("\n", " ")
    after = text[end : end + 30].replace("\n", " ")
    return f"...{before}<{end - start} chars hidden>{after}..."


class Sweep:
    """Collects texts by source and finds secrets in them (incrementally, in chunks)."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self.secrets = [s for s in secrets if s.value]
        self._owner: list[Secret] = []
        parts = []
        for secret in self.secrets:
            for pattern in secret.patterns():
                parts.append(f"(?P<s{len(self._owner)}>{pattern})")
                self._owner.append(secret)
        self._regex = re.compile("|".join(parts)) if parts else None
        self._pending: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.found: list[Finding] = []

    def add(self, source: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            self.counts[source] += 1
            self._pending.append((source, text))
            full = len(self._pending) >= CHUNK
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if self._regex is None:
            return
        for source, text in pending:
            for match in self._regex.finditer(text):
                secret = self._owner[int(str(match.lastgroup)[1:])]
                self.found.append(
                    Finding(secret.kind, secret.origin, source, _mask(text, match.start(), match.end()))
                )

    def add_file(self, path: Path, source: str = "file") -> None:
        try:
            with path.open("rb") as handle:
                raw = handle.read(FILE_LIMIT)
        except OSError:
            return
        self.add(f"{source} {path.name}", raw.decode("utf-8", "replace"))

    def findings(self) -> list[Finding]:
        self.flush()
        return list(self.found)


# -- the secrets of the tests -----------------------------------------------------------------


def _valid_ssn(text: str) -> bool:
    from card_model.errors import CardModelError
    from card_model.values import Ssn

    try:
        Ssn(text.upper())
    except CardModelError:
        return False
    return True


def _source_secrets(tests_dir: Path) -> Iterator[Secret]:
    for path in sorted(tests_dir.rglob("*.py")):
        if path.name == Path(__file__).name or "test_rel_secrets_sweep" in path.name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(tests_dir.parent)
        for match in _PIN_ASSIGN.finditer(text):
            for value in _DIGITS.findall(match.group(2)):
                yield Secret("pin", f"{rel} {match.group(1)}", value)
        for value in _SSN_LITERAL.findall(text):
            if _valid_ssn(value):
                yield Secret("ssn", f"{rel}", value.upper())


def _toml_pins(doc: Any, where: str, inside_pin: bool = False) -> Iterator[Secret]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _toml_pins(value, f"{where}.{key}", inside_pin or "pin" in str(key).lower())
    elif isinstance(doc, list):
        for item in doc:
            yield from _toml_pins(item, where, inside_pin)
    elif isinstance(doc, str) and inside_pin and re.fullmatch(r"\d{4,12}", doc):
        yield Secret("pin", where, doc)


def _data_secrets(paths: Iterable[Path]) -> Iterator[Secret]:
    for path in paths:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        yield from _toml_pins(doc, str(path.relative_to(REPO)))


def _demo_secrets() -> Iterator[Secret]:
    from card_model.demo import DEMO_HOLDERS, demo_card_image, demo_holder, demo_key_set, demo_psam_image
    from card_model.values import Ssn

    for name in DEMO_HOLDERS:
        person, _ = demo_holder(name)
        ssn = Ssn.parse(person.to_mapping()["ssn"])
        yield Secret("ssn", f"demo holder {name}", ssn.value)
        yield Secret("pin", f"demo holder {name} initial PIN", ssn.initial_pin)
    keys = demo_key_set()
    for (algorithm, role), value in keys.masters.items():
        yield Secret("key", f"demo master {algorithm.name} {role.value}", value.hex())
    for generation in (1, 2, 3):
        image = demo_card_image(generation)
        for kid, key in image.keys.items():
            yield Secret("key", f"demo gen{generation} card key {kid:02X}", bytes(key.value).hex())
    psam = demo_psam_image()
    for index, value in enumerate(_psam_key_values(psam)):
        yield Secret("key", f"demo PSAM key {index}", value.hex())


def _psam_key_values(psam: Any) -> list[bytes]:
    out = []
    for key in getattr(psam, "keys", {}).values() if isinstance(getattr(psam, "keys", None), dict) else []:
        value = getattr(key, "value", None)
        if isinstance(value, bytes | bytearray) and len(value) >= 8:
            out.append(bytes(value))
    return out


@functools.cache
def run_secrets(tests_dir: Path = TESTS_DIR) -> tuple[Secret, ...]:
    """Every secret the tests use (module docstring), de-duplicated by value."""
    data_files = [*tests_dir.rglob("*.toml"), REPO / "terminal" / "data" / "demo.toml"]
    seen: dict[tuple[str, str], Secret] = {}
    for secret in (*_demo_secrets(), *_source_secrets(tests_dir), *_data_secrets(data_files)):
        seen.setdefault((secret.kind, secret.value.upper()), secret)
    return tuple(seen.values())


# -- collecting ------------------------------------------------------------------------------------


class _Handler(logging.Handler):
    def __init__(self, sweep: Sweep) -> None:
        super().__init__(logging.NOTSET)
        self.sweep = sweep
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sweep.add("log", self.format(record))
        except Exception:
            self.sweep.counts["log (unformattable)"] += 1


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any


class Collectors:
    """The hooks into logging, the tracer, the journals and the exceptions."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.handler = _Handler(sweep)
        self.patches: list[_Patch] = []

    def _wrap(self, owner: Any, name: str, record: Callable[..., None]) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            try:
                record(result, *args, **kwargs)
            except Exception as exc:
                self.sweep.counts[f"collector errors ({name}: {type(exc).__name__})"] += 1
            return result

        self.patches.append(_Patch(owner, name, original))
        setattr(owner, name, wrapper)

    def install(self) -> None:
        logging.getLogger().addHandler(self.handler)
        from apdu.errors import SscardError
        from apdu.trace import Tracer
        from terminal.journal_hook import MemoryJournal
        from terminal.registry.journal import Journal

        add = self.sweep.add

        def trace(entry: Any, /, *args: Any, **kwargs: Any) -> None:
            add("trace", f"{entry.dir} {entry.hex}")

        self._wrap(Tracer, "_record", trace)

        def journal(source: str) -> Callable[..., None]:
            def record(_returned: Any, _self: Any, /, *args: Any, **kwargs: Any) -> None:
                add(
                    source,
                    json.dumps(
                        [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()],
                        ensure_ascii=False,
                    ),
                )

            return record

        for method in ("begin", "complete", "mark_torn", "resolve"):
            self._wrap(MemoryJournal, method, journal("journal"))
            self._wrap(Journal, method, journal("journal (registry)"))

        def exception(_returned: Any, error: Any, /, *args: Any, **kwargs: Any) -> None:
            text = [str(error), str(getattr(error, "message_zh", "")), repr(error)]
            try:
                text.append(json.dumps(error.to_dict(), ensure_ascii=False, default=str))
            except Exception:
                pass
            add("exception", "\n".join(text))

        self._wrap(SscardError, "__init__", exception)
        try:
            from sm_crypto.errors import CryptoError
        except ImportError:
            return
        self._wrap(CryptoError, "__init__", lambda _returned, error, *a, **k: add("exception", str(error)))

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        for patch in reversed(self.patches):
            setattr(patch.owner, patch.name, patch.original)
        self.patches.clear()


def run_dirs(config: pytest.Config | None = None) -> list[Path]:
    """Where the run's log files are: the run directory and the session's temp directory."""
    out = [Path(os.environ.get("SSCARD_RUN_DIR") or f"/tmp/sscard-pcsc-{os.getuid()}")]
    factory = getattr(config, "_tmp_path_factory", None) if config is not None else None
    if factory is not None:
        try:
            out.append(factory.getbasetemp())
        except OSError:
            pass
    return [p for p in out if p.is_dir()]


def scan_files(sweep: Sweep, dirs: Iterable[Path]) -> int:
    count = 0
    for folder in dirs:
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in FILE_SUFFIXES:
                sweep.add_file(path)
                count += 1
    return count


# -- pytest hooks (imported by tests/conftest.py) --------------------------------------------------

_SWEEP = pytest.StashKey[Sweep]()
_COLLECTORS = pytest.StashKey[Collectors]()


def pytest_configure(config: pytest.Config) -> None:
    sweep = Sweep(run_secrets())
    collectors = Collectors(sweep)
    collectors.install()
    config.stash[_SWEEP] = sweep
    config.stash[_COLLECTORS] = collectors


def pytest_runtest_setup(item: pytest.Item) -> None:
    logging.getLogger("sscard").setLevel(logging.DEBUG)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    sweep = config.stash.get(_SWEEP, None)
    collectors = config.stash.get(_COLLECTORS, None)
    if sweep is None or collectors is None:
        return
    collectors.uninstall()
    files = scan_files(sweep, run_dirs(config))
    findings = sweep.findings()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    counts = ", ".join(f"{n} {source}" for source, n in sorted(sweep.counts.items()))
    lines = [f"secrets sweep: {len(sweep.secrets)} secrets, scanned {counts}; {files} files"]
    if findings:
        lines.append(f"secrets sweep: FAILED, {len(findings)} secret(s) found:")
        lines += [f"  {f.line()}" for f in findings[:50]]
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        lines.append("secrets sweep: no PIN, key or full SSN found")
    if reporter is not None:
        reporter.write("\n")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)
