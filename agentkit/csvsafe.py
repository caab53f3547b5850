"""Cells a spreadsheet shows as text, for every CSV export (audit log, statistics, mail search).

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab
or carriage return before one) as a formula: OWASP's "CSV injection". Audit values such as a
sender domain or a mail id from the outer agent come from the internet, so such a cell gets a
leading apostrophe, which spreadsheets hide and read as "this is text".

A spreadsheet whose list separator is ``;`` (German and French locales) reads the
comma-separated line field by field at each ``;``, so ``x;=cmd|' /C calc'!A0`` becomes two
cells, the second a formula. Such a piece of a cell gets the apostrophe too (``x;'=cmd…``):
whatever a reader makes of the quotes around it, the piece starts with ``'``. Quoting every
field instead was checked and not chosen (decision "CSV exports safe with a `;` list separator").

A cell also shows every invisible character as a visible ``⟨U+XXXX⟩``
(``mailsafe.lookalike.reveal_invisible``): a bidi override in a file name stored before stop 29
(raw) would otherwise draw ``invoiceexe.pdf`` in the spreadsheet; text stored since is marked
already, and marking twice changes nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Final, Protocol, TypeVar

from mailsafe.lookalike import reveal_invisible

__all__ = ["InertWriter", "inert"]

Cell = TypeVar("Cell")

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# A ";" then what a reader may skip before the piece's first character (spaces, the quote of a
# quoted field), then a formula's first character.
_FORMULA_AFTER_SEMICOLON: Final = re.compile(r';(?=[\s"]*[=+\-@])')


class _TextOut(Protocol):
    def write(self, text: str, /) -> object: ...


def inert(cell: Cell) -> Cell | str:
    """The cell as text no spreadsheet runs as a formula, in a `,` or a `;` locale, with its
    invisible characters marked."""
    if not isinstance(cell, str):
        return cell
    cell_text = _FORMULA_AFTER_SEMICOLON.sub(";'", reveal_invisible(cell))
    return f"'{cell_text}" if cell_text.startswith(_FORMULA_START) else cell_text


class InertWriter:
    """``csv.writer`` with every cell made ``inert`` first: the one way our exports write CSV."""

    def __init__(self, out: _TextOut) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([inert(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)
