"""Benchmark exceptions, subclasses of the project-wide ``SscardError``.

Identifiers, own national codes (-1900..-1909), exit codes and texts live in
``data/errors.toml`` keyed by ``error_id``.  Messages name what failed (a
slot, a section, a path), never card data.
"""

from __future__ import annotations

from typing import ClassVar

from apdu.errors import SscardError
from terminal.bench._data import load_data

__all__ = ["BenchCheckError", "BenchError", "BenchOutputError", "BenchSetupError"]


class BenchError(SscardError):
    """Base of the benchmark errors."""

    error_id: ClassVar[str] = "bench_error"
    exit_code: ClassVar[int] = 1

    @classmethod
    def _load_defaults(cls) -> None:
        row = load_data("errors")[cls.error_id]
        cls.message_en = str(row["en"])
        cls.message_zh = str(row["zh"])
        cls.national_code = int(row["national_code"])
        cls.exit_code = int(row["exit_code"])


class BenchSetupError(BenchError):
    """pcscd/vpcd, a free slot, PostgreSQL, gmssl or the stock VirtualICC is unavailable."""

    error_id: ClassVar[str] = "bench_setup_error"


class BenchOutputError(BenchError):
    """The output directory or a results file cannot be written."""

    error_id: ClassVar[str] = "bench_output_error"


class BenchCheckError(BenchError):
    """A measured operation answered wrongly (the figure would be meaningless)."""

    error_id: ClassVar[str] = "bench_check_error"
