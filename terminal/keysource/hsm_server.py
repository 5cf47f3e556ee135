"""The software security module as a program: step requests on stdin, answers on stdout.

    python -m terminal.keysource.hsm_server KEYS.toml

reads one national step-1 request per line (``FLAG|ADDR|FACTOR|DATA|...|``)
and writes the answer of :class:`~terminal.keysource.software_hsm.SoftwareHsm`
over the issuer key set of ``KEYS.toml`` (the ``sscard-issuer-keys`` file)
as one line, until its input ends.  It is what ``sscard --key-source hsm
--hsm-command CMD`` talks to (:mod:`terminal.keysource.process_hsm`), and
the model of an adapter for a hardware module.  Master keys in a file are
for development and small sites only: it says so on standard error at start.
Requests and answers are never logged.  Exit codes: 0 at the end of input,
2 usage, 9 an unusable key file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from card_model.errors import KeySetError
from card_model.keys import IssuerKeySet
from terminal._data import load_data
from terminal.keysource.software_hsm import SoftwareHsm

__all__ = ["main", "serve_lines"]


def serve_lines(module: SoftwareHsm, source: TextIO, sink: TextIO) -> int:
    """Answer every request line of ``source`` on ``sink``; the number answered."""
    count = 0
    for line in source:
        request = line.rstrip("\r\n")
        if not request:
            continue
        sink.write(module.process(request) + "\n")
        sink.flush()
        count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m terminal.keysource.hsm_server",
        description="软件加密机：标准输入每行一个请求，标准输出每行一个应答。"
        "The software security module: one step-1 request per input line, one answer per output line.",
    )
    parser.add_argument("key_file", help="sscard-issuer-keys file (development and small sites only)")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        key_set = IssuerKeySet.load(args.key_file)
    except KeySetError as exc:
        print(f"错误：{exc.message_zh}（代码 {exc.national_code}）\nerror: {exc}", file=sys.stderr)
        return 9
    texts = load_data("keysource")["dev_key_file"]
    print(
        f"{str(texts['warning_zh']).format(source=args.key_file)}\n"
        f"{str(texts['warning_en']).format(source=args.key_file)}",
        file=sys.stderr,
        flush=True,
    )
    module = SoftwareHsm(key_set)
    try:
        serve_lines(module, sys.stdin, sys.stdout)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
