"""Cells a spreadsheet shows as text, for the CSV exports of the audit log and statistics.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab
or carriage return before one) as a formula: OWASP's "CSV injection". Audit values such as a
sender domain or a mail id from the outer agent come from the internet, so such a cell gets a
leading apostrophe, which spreadsheets hide and read as "this is text".
"""

from __future__ import annotations

__all__ = ["inert"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(cell: str | int) -> str | int:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell
