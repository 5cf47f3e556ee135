"""sscard card model: the social security card described as data.

Profiles (``card_model.profile``), validated holder and card values
(``card_model.values``, ``card_model.holder``), issuer key sets
(``card_model.keys``), the mutable card image and its atomic store
(``card_model.image``, ``card_model.store``), software issuance
(``card_model.issuance``) and deterministic demo cards (``card_model.demo``).
See docs/card-model.md.
"""
