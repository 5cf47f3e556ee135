"""Benchmarks: APDU, crypto, flow, service and registry figures, each beside its anchor.

``sscard bench`` / ``scripts/bench`` run the sections (``apdu``, ``crypto``,
``flows``, ``service``, ``scale``) and write ``bench/results.json`` and
``bench/latency.png``; docs/performance.md explains every figure.
"""
