"""APDU round trip through pcscd + vpcd: our card OS vs the floor vs the stock VirtualICC.

Three cards answer the same APDU (``data/cards.toml``: SELECT MF without FCI,
``9000``) in vpcd slots, each reached with ``PcscTransport``:

- the echo card (:class:`terminal.bench.echo.EchoCard`) on our ``VpcdLink``:
  the loopback floor, no card logic;
- our card OS (``emulator.card_os.CardOS`` with the demo generation-3 image)
  on our ``VpcdLink``;
- the stock vsmartcard ``VirtualICC`` (card type iso7816) in its own process
  (:mod:`terminal.bench.stock`).

With three free slots all three are timed in the same rounds.  With two
(the test suite's slots 14-15) the section runs two interleaved groups,
floor + card OS, then card OS + stock, and each ratio uses the two figures
measured together (``apdu.card_os_beside_stock`` is the card OS of group 2).
The card OS's own ``process()`` time without any transport is reported
beside them, to show where the round trip goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from apdu.pcsc import PcscTransport
from card_model.demo import demo_card_image
from emulator.card_os import CardOS
from emulator.stack import PcscStack
from terminal.bench._data import load_data
from terminal.bench.context import BenchContext
from terminal.bench.echo import EchoCard
from terminal.bench.errors import BenchCheckError
from terminal.bench.report import Figure, SectionResult, latency_figure
from terminal.bench.slots import connect_when_present, inserted, wait_until_empty
from terminal.bench.stock import StockVicc
from terminal.bench.timing import Subject, measure_interleaved

__all__ = ["run"]

SECTION = "apdu"


def _sender(transport: PcscTransport, command: bytes, expect: bytes, who: str) -> Callable[[], None]:
    def send() -> None:
        answer = transport.transmit(command)
        if answer != expect:
            raise BenchCheckError(f"{who} answered {answer.hex().upper()} to the benchmark APDU")

    return send


def _processor(card: CardOS, command: bytes, expect: bytes) -> Callable[[], None]:
    def process() -> None:
        if card.process(command) != expect:
            raise BenchCheckError("the card OS answered wrongly in process")

    return process


@contextmanager
def _stock_card(stack: PcscStack, slot: int) -> Iterator[StockVicc]:
    """The stock VirtualICC in ``slot``; afterwards the slot is empty again."""
    with StockVicc(stack.port_for_slot(slot)) as stock:
        yield stock
    wait_until_empty(stack.reader_for_slot(slot))


def run(ctx: BenchContext, result: SectionResult) -> None:
    table = load_data("cards")["apdu"]
    command = bytes.fromhex(table["command"])
    expect = bytes.fromhex(table["expect"])
    settings = ctx.settings(SECTION)
    plan = ctx.plan(SECTION)
    stock_weight = float(settings["stock_weight"])
    pool = ctx.pool()
    stack = ctx.stack()
    three = pool.available() >= 3
    card = CardOS(demo_card_image(), interface="contact")
    local_card = CardOS(demo_card_image(), interface="contact")
    local_card.power_on()
    details = {"apdu": command.hex().upper(), "answer": expect.hex().upper()}

    with pool.take(3 if three else 2, "the APDU round trip") as slots, ExitStack() as stack_of:
        echo_slot, card_slot = slots[0], slots[1]
        stock_slot = slots[2] if three else slots[0]
        stack_of.enter_context(inserted(EchoCard(), echo_slot, stack))
        stack_of.enter_context(inserted(card, card_slot, stack))
        echo_tx = stack_of.enter_context(connect_when_present(stack.reader_for_slot(echo_slot)))
        card_tx = stack_of.enter_context(connect_when_present(stack.reader_for_slot(card_slot)))
        floor_call = _sender(echo_tx, command, expect, "the echo card")
        card_call = _sender(card_tx, command, expect, "the card OS")
        local_call = _processor(local_card, command, expect)
        result.notes.append(
            f"slots used: {slots}; {'one group of three' if three else 'two groups of two'} interleaved"
        )
        ctx.log(f"apdu: floor, card OS{' and stock VirtualICC' if three else ''} interleaved")
        if three:
            with _stock_card(stack, stock_slot) as stock:
                stock_tx = stack_of.enter_context(connect_when_present(stack.reader_for_slot(stock_slot)))
                stock.check_running()
                stock_call = _sender(stock_tx, command, expect, "the stock VirtualICC")
                samples = measure_interleaved(
                    [
                        Subject("floor", floor_call),
                        Subject("card_os", card_call),
                        Subject("in_process", local_call),
                        Subject("stock", stock_call, weight=stock_weight),
                    ],
                    plan,
                )
                stock_tx.disconnect()
            group2 = samples
        else:
            samples = measure_interleaved(
                [
                    Subject("floor", floor_call),
                    Subject("card_os", card_call),
                    Subject("in_process", local_call),
                ],
                plan,
            )
            echo_tx.disconnect()
            stack_of.close()
            ctx.log("apdu: card OS and stock VirtualICC interleaved")
            with ExitStack() as second:
                second.enter_context(inserted(card, card_slot, stack))
                card_tx2 = second.enter_context(connect_when_present(stack.reader_for_slot(card_slot)))
                stock = second.enter_context(_stock_card(stack, stock_slot))
                stock_tx = second.enter_context(connect_when_present(stack.reader_for_slot(stock_slot)))
                stock.check_running()
                group2 = measure_interleaved(
                    [
                        Subject("card_os", _sender(card_tx2, command, expect, "the card OS")),
                        Subject(
                            "stock",
                            _sender(stock_tx, command, expect, "the stock VirtualICC"),
                            weight=stock_weight,
                        ),
                    ],
                    plan,
                )
                stock_tx.disconnect()
                card_tx2.disconnect()

    floor = result.add(
        latency_figure(
            "apdu.floor",
            SECTION,
            "APDU round trip, echo card answering 9000 (loopback floor)",
            samples["floor"],
            details=details,
        )
    )
    card_fig = result.add(
        latency_figure(
            "apdu.card_os",
            SECTION,
            "APDU round trip, our card OS",
            samples["card_os"],
            anchor=floor,
            meaning="times the loopback floor",
            details=details,
        )
    )
    result.add(
        latency_figure(
            "apdu.card_os_process",
            SECTION,
            "card OS process() alone, no transport",
            samples["in_process"],
            details=details,
        )
    )
    stock_anchor: Figure = card_fig
    if not three:
        stock_anchor = result.add(
            latency_figure(
                "apdu.card_os_beside_stock",
                SECTION,
                "APDU round trip, our card OS (measured beside the stock card)",
                group2["card_os"],
                details=details,
            )
        )
    result.add(
        latency_figure(
            "apdu.stock_vicc",
            SECTION,
            "APDU round trip, stock vsmartcard VirtualICC (iso7816)",
            group2["stock"],
            anchor=stock_anchor,
            meaning="times slower than our card OS",
            details=details,
        )
    )
