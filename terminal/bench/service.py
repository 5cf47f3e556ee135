"""The local service: request to response over HTTP and the national WebSocket, 1 and N readers.

Set-up: our card OS (demo generation-3 image) in N card slots and the demo
PSAM in one more (N = ``readers`` of ``data/plan.toml``, fewer when fewer
slots are free: the test suite's two slots give N = 1).  One ``sscard
serve`` process per card reader (:mod:`terminal.bench.service_host`), each
configured with its reader and the shared PSAM, as a counter PC runs it.

Latency, interleaved in the same rounds with its anchor:

- ``service.http.read_basic``: ``POST /api/v1/card/basic`` (token, keep-alive
  connection, body ``{"reader": ...}``) to service 0, request to response;
- ``service.national.read_card_bas``: ``{"function": "iReadCardBas",
  "iType": 3}`` on one open WebSocket to service 0's national port (basic
  information plus SSN and name: external authentication via the PSAM);
- anchors ``service.direct.read_basic`` / ``service.direct.read_card_bas``:
  the same flow called directly in the bench process (``CardSession.open``
  on the same reader, ``flows.read_basic`` / ``flows.read_card_bas`` with a
  ``PsamKeySource`` on the same PSAM, ``close``): what the service adds is
  the ratio.

Throughput (``req/s`` over wall time; per-request latencies kept), 1 reader
then N readers at once, alternating for ``concurrent_rounds`` rounds: one
client thread per reader sends ``concurrent_requests`` requests one after
another.  HTTP: every thread to service 0 (one service drives all readers,
the native API's model), each naming its reader.  National: thread *i* to
service *i* (the national interface has no reader argument; each counter's
service drives its own reader).  The N-reader figure's ratio is its
throughput over the 1-reader throughput.  An error answer during a
throughput run is counted (``details.failed`` and a note) rather than
ending the section, up to ``max_failed_fraction`` of the requests; in the
latency runs any error answer ends the section.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from card_model.demo import demo_ca, demo_card_image, demo_psam_image
from card_model.lifecycle import LifeCycle
from emulator.card_os import CardOS
from emulator.psam import PsamCard
from terminal import flows
from terminal.bench._data import load_data
from terminal.bench.context import BenchContext
from terminal.bench.errors import BenchCheckError, BenchSetupError
from terminal.bench.report import Figure, Ratio, SectionResult, latency_figure
from terminal.bench.service_clients import Call, Failures, http_call, national_call
from terminal.bench.service_host import ServiceProcess, write_token
from terminal.bench.slots import connect_when_present, inserted
from terminal.bench.timing import Stats, Subject, measure_interleaved, time_calls
from terminal.keysource.psam import PsamKeySource
from terminal.session import CardSession

__all__ = ["run", "run_concurrently", "throughput_figure"]

SECTION = "service"


def _requests() -> dict[str, Any]:
    return dict(load_data("service")["requests"])


def _direct_call(reader: str, psam: PsamKeySource, flow: Callable[[CardSession], object]) -> Call:
    anchors = (demo_ca().certificate,)

    def call() -> None:
        session = CardSession.open(reader, key_source=psam, trust_anchors=anchors)
        try:
            flow(session)
        finally:
            session.close()

    return call


def run_concurrently(callers: Sequence[Call], count: int) -> tuple[list[int], int]:
    """Every caller in its own thread, ``count`` calls each: (latencies ns, wall ns)."""
    barrier = threading.Barrier(len(callers) + 1)
    samples: list[list[int]] = [[] for _ in callers]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        barrier.wait()
        try:
            time_calls(callers[index], count, samples[index])
        except BaseException as exc:  # handed to the main thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(i,), name=f"bench-client-{i}") for i in range(len(callers))
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    wall = time.perf_counter_ns() - start
    if errors:
        raise errors[0]
    return [ns for per_thread in samples for ns in per_thread], wall


def throughput_figure(
    figure_id: str,
    label: str,
    samples: list[int],
    wall_ns: int,
    readers: int,
    anchor: Figure | None,
    failures: Failures | None = None,
) -> Figure:
    """Requests (answered, error answers included) per second of wall time."""
    failed = dict(failures.counts) if failures is not None else {}
    figure = Figure(
        id=figure_id,
        section=SECTION,
        label=label,
        unit="req/s",
        value=len(samples) / (wall_ns / 1e9),
        stats=Stats.of_ns(samples),
        details={
            "readers": readers,
            "requests": len(samples),
            "wall_s": wall_ns / 1e9,
            "failed": failed,
        },
        samples_ns=list(samples),
    )
    if anchor is not None:
        figure.anchor = anchor.id
        figure.ratio = Ratio(
            figure.id, figure.value, anchor.id, anchor.value, "times the 1-reader throughput"
        )
    return figure


@dataclass
class _Batch:
    """The requests of one kind and reader count, over all throughput rounds."""

    samples: list[int] = field(default_factory=list)
    wall_ns: int = 0
    failures: Failures = field(default_factory=Failures)


def _check_failures(batches: dict[tuple[str, int], _Batch], limit: float) -> None:
    """Error answers are counted, not fatal, in the throughput runs; beyond ``limit``
    (a fraction of the requests) the figure would not describe the service."""
    for (kind, size), batch in batches.items():
        total = len(batch.samples)
        if total and batch.failures.total / total > limit:
            raise BenchCheckError(
                f"{kind} with {size} reader(s): {batch.failures.total} of {total} requests "
                f"answered an error: {dict(batch.failures.counts)}"
            )


@contextmanager
def _explained(ctx: BenchContext, services: Sequence[ServiceProcess]) -> Iterator[None]:
    """On a wrong answer, log the end of every service's log (why it answered so)."""
    try:
        yield
    except BenchCheckError:
        for index, service in enumerate(services):
            ctx.log(f"service: log of sscard serve {index}:\n{service.log_tail()}")
        raise


@contextmanager
def _services(
    folder: Path, readers: Sequence[str], psam_reader: str, token_file: Path
) -> Iterator[list[ServiceProcess]]:
    with ExitStack() as stack:
        services = [
            stack.enter_context(ServiceProcess(folder / f"service-{i}", reader, psam_reader, token_file))
            for i, reader in enumerate(readers)
        ]
        for service in services:
            service.wait_ready()
        yield services


def run(ctx: BenchContext, result: SectionResult) -> None:
    settings = ctx.settings(SECTION)
    plan = ctx.plan(SECTION)
    requests = _requests()
    timeout = float(requests["request_timeout"])
    path = str(requests["http_path"])
    function = str(requests["national_function"])
    itype = int(requests["national_itype"])
    rounds = int(settings["concurrent_rounds"])
    per_reader = int(settings["concurrent_requests"])
    pool = ctx.pool()
    stack = ctx.stack()
    free = pool.available()
    if free < 2:
        raise BenchSetupError(
            f"the service section needs 2 free vpcd slots (a card and the PSAM); free: {free}"
        )
    count = max(1, min(int(settings["readers"]), free - 1))

    with pool.take(count + 1, "the service") as slots, ExitStack() as held:
        card_slots, psam_slot = slots[:count], slots[count]
        psam_reader = stack.reader_for_slot(psam_slot)
        held.enter_context(inserted(PsamCard(demo_psam_image()), psam_slot, stack))
        readers = [stack.reader_for_slot(slot) for slot in card_slots]
        for slot in card_slots:
            card = CardOS(demo_card_image(life_cycle=LifeCycle.ACTIVE), interface="contact")
            held.enter_context(inserted(card, slot, stack))
        for reader in [psam_reader, *readers]:
            connect_when_present(reader).disconnect()
        psam = PsamKeySource.open(psam_reader)
        held.callback(psam.close)
        folder = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="sscard-bench-service-")))
        token_file, token = write_token(folder)
        ctx.log(f"service: starting {count} sscard serve process(es)")
        services = held.enter_context(_services(folder, readers, psam_reader, token_file))
        headers = {"Authorization": f"Bearer {token}"}
        http = [
            held.enter_context(httpx.Client(base_url=services[0].api, headers=headers, timeout=timeout))
            for _ in readers
        ]
        national = [held.enter_context(connect(s.national, open_timeout=timeout)) for s in services]

        def http_calls(failures: Failures | None = None) -> list[Call]:
            return [http_call(c, path, r, failures) for c, r in zip(http, readers, strict=True)]

        def national_calls(failures: Failures | None = None) -> list[Call]:
            return [national_call(ws, function, itype, timeout, failures) for ws in national]

        held.enter_context(_explained(ctx, services))

        ctx.log("service: HTTP and national requests interleaved with direct calls")
        samples = measure_interleaved(
            [
                Subject("direct_basic", _direct_call(readers[0], psam, flows.read_basic)),
                Subject("http", http_calls()[0]),
                Subject("direct_bas", _direct_call(readers[0], psam, flows.read_card_bas)),
                Subject("national", national_calls()[0]),
            ],
            plan,
        )
        for call in http_calls()[1:] + national_calls()[1:]:
            for _ in range(max(1, plan.warmup)):
                call()
        ctx.log(f"service: throughput with 1 and {count} reader(s)")
        sizes = sorted({1, count})
        batches = {(kind, size): _Batch() for kind in ("http", "national") for size in sizes}
        for _ in range(rounds):
            for kind, calls in (("http", http_calls), ("national", national_calls)):
                for size in sizes:
                    batch = batches[(kind, size)]
                    got, wall = run_concurrently(calls(batch.failures)[:size], per_reader)
                    batch.samples += got
                    batch.wall_ns += wall
        _check_failures(batches, float(requests["max_failed_fraction"]))
        for (kind, size), batch in batches.items():
            if batch.failures.total:
                result.notes.append(
                    f"{kind} with {size} reader(s): {batch.failures.total} of {len(batch.samples)} "
                    f"requests answered an error (counted, not fatal): {dict(batch.failures.counts)}"
                )
        for service in services:
            service.check_running()
        result.notes.append(
            f"slots {slots} (cards {list(card_slots)}, PSAM {psam_slot}); {count} sscard serve process(es), "
            "one per reader, sharing the PSAM; INFO logging to a file; clients in the bench process"
            + ("" if count > 1 else "; only one card slot free, so no multi-reader figures")
        )

    direct_basic = result.add(
        latency_figure(
            "service.direct.read_basic",
            SECTION,
            "read basic, direct call (CardSession + flows.read_basic over PC/SC, no service)",
            samples["direct_basic"],
        )
    )
    result.add(
        latency_figure(
            "service.http.read_basic",
            SECTION,
            f"HTTP POST {path}, request to response",
            samples["http"],
            anchor=direct_basic,
            meaning="times the direct call",
        )
    )
    direct_bas = result.add(
        latency_figure(
            "service.direct.read_card_bas",
            SECTION,
            "iReadCardBas work, direct call (flows.read_card_bas with the PSAM, no service)",
            samples["direct_bas"],
        )
    )
    result.add(
        latency_figure(
            f"service.national.{function}",
            SECTION,
            f"national WebSocket {function}, request to response",
            samples["national"],
            anchor=direct_bas,
            meaning="times the direct call",
        )
    )
    for kind, label in (("http", f"HTTP {path}"), ("national", f"national {function}")):
        single = batches[(kind, 1)]
        one = result.add(
            throughput_figure(
                f"service.{kind}.readers_1",
                f"{label}, 1 reader: throughput (per request: median / p99)",
                single.samples,
                single.wall_ns,
                readers=1,
                anchor=None,
                failures=single.failures,
            )
        )
        if count > 1:
            many = batches[(kind, count)]
            result.add(
                throughput_figure(
                    f"service.{kind}.readers_{count}",
                    f"{label}, {count} readers at once: throughput (per request: median / p99)",
                    many.samples,
                    many.wall_ns,
                    readers=count,
                    anchor=one,
                    failures=many.failures,
                )
            )
