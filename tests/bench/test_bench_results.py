"""The smoke run's results.json: structure, positive figures, ratios from their parts.

No timed assertions: the numbers are whatever this machine gives; only their
consistency is checked.
"""

from __future__ import annotations

import math
import operator

import pytest
from bench_helpers import SmokeRun

from terminal.bench.runner import SECTIONS

FIGURE_KEYS = {
    "id",
    "section",
    "label",
    "unit",
    "value",
    "stats",
    "anchor",
    "ratio",
    "target",
    "pass",
    "details",
}
STATS_KEYS = {"n", "median", "p99", "mean", "min", "max", "p10", "p90", "stdev"}
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def test_document_header(smoke_run: SmokeRun) -> None:
    doc = smoke_run.doc
    assert doc["format"] == "sscard-bench"
    assert doc["version"] == 1
    assert doc["mode"] == "smoke"
    assert doc["note"] == "pytest smoke run"
    assert doc["started_at"] <= doc["finished_at"]
    assert doc["duration_s"] > 0


def test_machine_is_described(smoke_run: SmokeRun) -> None:
    machine = smoke_run.doc["machine"]
    for key in ("cpu_model", "cores", "kernel", "python", "openssl", "packages"):
        assert machine[key], key
    assert machine["cores"] >= 1
    for key in ("load_average_start", "load_average_end"):
        assert len(machine[key]) == 3
        assert all(value >= 0 for value in machine[key])


def test_every_section_ran_and_succeeded(smoke_run: SmokeRun) -> None:
    sections = smoke_run.doc["sections"]
    assert list(sections) == list(SECTIONS)
    for name, section in sections.items():
        assert section["status"] == "ok", (name, section["error"])
        assert section["error"] is None
        assert section["figures"], name
        assert section["duration_s"] > 0
        assert len(section["load_average_start"]) == len(section["load_average_end"]) == 3


def test_figures_are_complete_and_positive(smoke_run: SmokeRun) -> None:
    ids = [f["id"] for f in smoke_run.figures()]
    assert len(ids) == len(set(ids))
    for name, section in smoke_run.doc["sections"].items():
        for figure in section["figures"]:
            assert set(figure) == FIGURE_KEYS
            assert figure["section"] == name
            assert figure["id"].startswith(f"{name}.")
            assert figure["label"]
            assert math.isfinite(figure["value"]) and figure["value"] > 0, figure["id"]
            if figure["stats"] is not None:
                stats = figure["stats"]
                assert set(stats) == STATS_KEYS
                assert stats["n"] >= 1
                assert 0 < stats["min"] <= stats["median"] <= stats["max"]
                assert (
                    stats["min"]
                    <= stats["p10"]
                    <= stats["median"]
                    <= stats["p90"]
                    <= stats["p99"]
                    <= stats["max"]
                )


def test_latency_value_is_the_median(smoke_run: SmokeRun) -> None:
    latencies = [f for f in smoke_run.figures() if f["unit"] == "us"]
    assert latencies
    for figure in latencies:
        assert figure["value"] == figure["stats"]["median"]


def test_rate_value_is_calls_per_busy_second(smoke_run: SmokeRun) -> None:
    rates = [f for f in smoke_run.figures() if f["unit"] == "ops/s"]
    assert rates
    for figure in rates:
        stats = figure["stats"]
        assert figure["value"] == pytest.approx(stats["n"] / (stats["mean"] * stats["n"] / 1e6))


def test_each_ratio_is_computed_from_its_parts(smoke_run: SmokeRun) -> None:
    with_ratio = [f for f in smoke_run.figures() if f["ratio"] is not None]
    assert len(with_ratio) >= 10
    for figure in with_ratio:
        ratio = figure["ratio"]
        numerator, denominator = ratio["numerator"], ratio["denominator"]
        assert ratio["value"] == pytest.approx(numerator["value"] / denominator["value"])
        assert smoke_run.figure(numerator["figure"])["value"] == numerator["value"]
        assert smoke_run.figure(denominator["figure"])["value"] == denominator["value"]
        assert figure["id"] in (numerator["figure"], denominator["figure"])
        assert figure["anchor"] in (numerator["figure"], denominator["figure"])
        assert figure["anchor"] != figure["id"]
        assert ratio["meaning"]


def test_pass_follows_the_target(smoke_run: SmokeRun) -> None:
    targeted = [f for f in smoke_run.figures() if f["target"] is not None]
    assert {"apdu.card_os", "apdu.stock_vicc", "crypto.sm2_sign", "crypto.sm2_verify"} <= {
        f["id"] for f in targeted
    }
    for figure in smoke_run.figures():
        target = figure["target"]
        if target is None:
            assert figure["pass"] is None
            continue
        number = figure["ratio"]["value"] if target["applies_to"] == "ratio" else figure["value"]
        assert figure["pass"] is OPS[target["op"]](number, target["value"])
        assert target["text"]


def test_summary_lists_every_figure(smoke_run: SmokeRun) -> None:
    summary = smoke_run.doc["summary"]
    assert [row["id"] for row in summary] == [f["id"] for f in smoke_run.figures()]
    for row in summary:
        figure = smoke_run.figure(row["id"])
        assert row["value"] == figure["value"]
        assert row["pass"] == figure["pass"]
        assert row["ratio"] == (figure["ratio"]["value"] if figure["ratio"] else None)


def test_apdu_section_has_floor_card_and_stock(smoke_run: SmokeRun) -> None:
    card = smoke_run.figure("apdu.card_os")
    stock = smoke_run.figure("apdu.stock_vicc")
    assert card["anchor"] == "apdu.floor"
    assert card["ratio"]["numerator"]["figure"] == "apdu.card_os"
    # two slots: the stock card is measured beside a second card OS figure
    assert stock["anchor"] == "apdu.card_os_beside_stock"
    assert stock["ratio"]["numerator"]["figure"] == "apdu.stock_vicc"
    assert card["details"]["apdu"] == "00A4000C023F00"
    assert "two groups" in " ".join(smoke_run.doc["sections"]["apdu"]["notes"])


def test_crypto_pairs_sm_crypto_with_gmssl(smoke_run: SmokeRun) -> None:
    for short in ("sm2_sign", "sm2_verify", "sm4_mac", "sm3"):
        ours = smoke_run.figure(f"crypto.{short}")
        assert ours["anchor"] == f"crypto.{short}.gmssl"
        # "times faster": gmssl over ours
        assert ours["ratio"]["numerator"]["figure"] == f"crypto.{short}.gmssl"


def test_scale_covers_both_backends_with_growth(smoke_run: SmokeRun) -> None:
    for backend in ("sqlite", "postgresql"):
        for op in ("register", "check_presented", "status_change", "journal_entry"):
            figure = smoke_run.figure(f"scale.{backend}.{op}")
            assert figure["unit"] == "ops/s"
            assert figure["anchor"] == f"scale.{backend}.commit"
        for op in ("register", "status_change", "journal_entry"):
            growth = smoke_run.figure(f"scale.{backend}.{op}.growth")
            assert growth["unit"] == "bytes/op"
            per_table = growth["details"]["per_table"]
            assert set(per_table) == {"holders", "cards", "card_events", "journal"}
            assert growth["value"] == pytest.approx(sum(per_table.values()))


FLOWS = (
    "read_basic",
    "read_holder",
    "authenticate",
    "pin_verify",
    "pin_change",
    "pin_reset",
    "pin_unblock",
    "activate",
    "wallet_load",
    "wallet_purchase",
    "issuance",
)


def test_flows_count_apdus_against_the_minimum(smoke_run: SmokeRun) -> None:
    for name in FLOWS:
        latency = smoke_run.figure(f"flows.{name}")
        assert latency["anchor"] == "flows.session"
        sent = smoke_run.figure(f"flows.{name}.apdus")
        minimum = smoke_run.figure(f"flows.{name}.apdus_min")
        assert sent["unit"] == minimum["unit"] == "apdus"
        assert sent["value"] == sent["details"]["card"] + sent["details"]["psam"]
        assert minimum["value"] == minimum["details"]["card"] + minimum["details"]["psam"]
        assert len(minimum["details"]["commands"]) >= 2
        # the minimum is a floor: no flow can do its job with fewer APDUs
        assert sent["details"]["card"] >= minimum["details"]["card"], name
        assert sent["value"] >= minimum["value"], name
        assert sent["anchor"] == minimum["id"]
        assert latency["details"] == {
            "apdus_card": sent["details"]["card"],
            "apdus_psam": sent["details"]["psam"],
        }
    assert smoke_run.figure("flows.read_basic.apdus_min")["details"]["psam"] == 0
    assert smoke_run.figure("flows.read_holder.apdus_min")["details"]["psam"] == 2


def test_service_measures_http_and_national_beside_direct_calls(smoke_run: SmokeRun) -> None:
    section = smoke_run.doc["sections"]["service"]
    for request, anchor in (
        ("service.http.read_basic", "service.direct.read_basic"),
        ("service.national.iReadCardBas", "service.direct.read_card_bas"),
    ):
        figure = smoke_run.figure(request)
        assert figure["unit"] == "us"
        assert figure["anchor"] == anchor
        assert figure["ratio"]["numerator"]["figure"] == request
    # two slots: one card reader and the PSAM, so only the 1-reader throughput
    for kind in ("http", "national"):
        throughput = smoke_run.figure(f"service.{kind}.readers_1")
        assert throughput["unit"] == "req/s"
        assert throughput["details"]["readers"] == 1
        assert throughput["details"]["requests"] == throughput["stats"]["n"]
        wall = throughput["details"]["wall_s"]
        assert throughput["value"] == pytest.approx(throughput["details"]["requests"] / wall)
    assert not [f for f in section["figures"] if f["id"].endswith("readers_2")]
    assert "no multi-reader figures" in " ".join(section["notes"])
