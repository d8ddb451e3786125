"""Transform: parse values (``parse``), drop/tokenise PII (``pii``), make keys
(``keys``) and shape the star schema (``star``).

Import from the submodules; this package imports nothing eagerly so that the
validate stage can use the converters without a cycle.
"""
