"""Soundboxes: queue calls and fee confirmations spoken in Vietnamese (README.md beside this file).

- `numbers`: pure reading of integers, đồng amounts and ticket digits as Vietnamese words;
- `number_parser`: the reverse, from those words back to the number (tests, checks on templates).
"""
