"""ISO 7816-4 protocol layer shared by the terminal and the emulator.

Submodules: ``errors`` (project-wide exception base), ``status`` (status
words as data), ``command``/``response`` (APDU objects), ``transport``
(the Transport protocol), ``pcsc`` (the only pyscard user), ``inprocess``
(direct attachment to an emulated card), ``protocol`` (GET RESPONSE,
6Cxx, chaining), ``tlv``, ``elements`` (data-element codecs), ``sm``
(secure messaging) and ``trace`` (redacting APDU tracer).
"""
