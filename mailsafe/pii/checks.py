"""Arithmetic checks: dates, the resident-number check digit, Luhn."""

from __future__ import annotations

import datetime
from operator import mul
from typing import Final

# Gender/century digit of a resident (1-4) or foreigner (5-8) registration number -> century.
CENTURY_OF_GENDER_DIGIT: Final[dict[str, int]] = {
    "1": 1900, "2": 1900, "3": 2000, "4": 2000,
    "5": 1900, "6": 1900, "7": 2000, "8": 2000,
}  # fmt: skip
FOREIGNER_GENDER_DIGITS: Final = frozenset("5678")
_RRN_WEIGHTS: Final = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_RRN_WEIGHT_SUM: Final = sum(_RRN_WEIGHTS)
_ZERO: Final = ord("0")  # an ASCII digit's code minus this is its value
# Luhn: every second digit from the right doubled, and 9 taken off a two-digit result.
_LUHN_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_LUHN_DOUBLED_CODES: Final = bytes.maketrans(b"0123456789", bytes(_LUHN_DOUBLED))


def is_valid_birth_date(yymmdd: str, gender_digit: str) -> bool:
    """True when YYMMDD is a real calendar date in the century the gender digit names."""
    century = CENTURY_OF_GENDER_DIGIT.get(gender_digit)
    if century is None or len(yymmdd) != 6 or not yymmdd.isdigit():
        return False
    try:
        datetime.date(century + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return False
    return True


# Resident numbers issued from October 2020 end in a random digit instead of a check digit; a
# child born since then holds no other kind. (Numbers re-issued to older people are rare.)
CHECK_DIGITS_ENDED: Final = datetime.date(2020, 10, 1)
_CHECK_DIGITS_ENDED_YYMMDD: Final = CHECK_DIGITS_ENDED.strftime("%y%m%d")
_BORN_IN_THE_2000S: Final = frozenset(
    digit for digit, century in CENTURY_OF_GENDER_DIGIT.items() if century == 2000
)


def born_after_check_digits_ended(yymmdd: str, gender_digit: str) -> bool:
    """True when the birth date (a valid one: see ``is_valid_birth_date``) is in or after
    October 2020: such a number has no check digit, so one that happens to hold is chance."""
    return gender_digit in _BORN_IN_THE_2000S and yymmdd >= _CHECK_DIGITS_ENDED_YYMMDD


# The children's numbers a name alone vouches for: born since the check digit ended, up to a
# year no one is born in yet. Korea's barcodes (EAN-13 "880...") read as births in 2088.
# Move it along before 2040.
NAMED_CHILD_BORN_BEFORE_YY: Final = "40"


def child_number_without_check_digit(yymmdd: str, gender_digit: str) -> bool:
    """True for a (valid) birth date from October 2020 to 2039 in the 2000s' gender digits."""
    return born_after_check_digits_ended(yymmdd, gender_digit) and (
        yymmdd[:2] < NAMED_CHILD_BORN_BEFORE_YY
    )


def registration_check_digit_ok(digits: str) -> bool:
    """The pre-October-2020 check digit of a 13-digit resident or foreigner number:
    weights 2-9,2-5 over the first 12 digits; ``(11 - sum % 11) % 10`` for residents,
    ``(13 - sum % 11) % 10`` for foreigners."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    if digits.isascii():  # digit values straight from the bytes, summed in C
        codes = digits.encode("ascii")
        total: int = sum(map(mul, codes[:12], _RRN_WEIGHTS)) - _ZERO * _RRN_WEIGHT_SUM
        check = codes[12] - _ZERO
    else:
        total = sum(map(mul, map(int, digits[:12]), _RRN_WEIGHTS))
        check = int(digits[12])
    base = 13 if digits[6] in FOREIGNER_GENDER_DIGITS else 11
    return check == (base - total % 11) % 10


def corporate_check_digit_ok(digits: str) -> bool:
    """The check digit of a 13-digit corporate registration number (법인등록번호): weights
    1,2,1,2... over the first 12 digits, ``(10 - sum % 10) % 10``."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(digit) * (1 + index % 2) for index, digit in enumerate(digits[:12]))
    return int(digits[12]) == (10 - total % 10) % 10


# The first two digits of a corporate number are its registry office's region (11 Seoul ...
# 28): a resident number born in those years with a corporate check digit is looked at twice.
CORPORATE_REGISTRY_PREFIXES: Final = range(11, 29)


def ean13_check_digit_ok(digits: str) -> bool:
    """The check digit of a 13-digit EAN/GTIN barcode: weights 1,3,1,3... over the first 12
    digits, ``(10 - sum % 10) % 10``. Korea's products begin 880, a birth date in 1988."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(digits[:12]))
    return int(digits[12]) == (10 - total % 10) % 10


def child_of_the_2000s(yymmdd: str, gender_digit: str) -> bool:
    """True for a (valid) birth date in 2000-2039 (gender digit 3, 4, 7 or 8): a child's or a
    young person's number, with or without a check digit (see ``NAMED_CHILD_BORN_BEFORE_YY``)."""
    return gender_digit in _BORN_IN_THE_2000S and yymmdd[:2] < NAMED_CHILD_BORN_BEFORE_YY


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    if not digits.isdigit():
        return False
    if digits.isascii():  # digit values straight from the bytes, summed in C
        codes = digits.encode("ascii")[::-1]
        kept, doubled = codes[::2], codes[1::2]
        total = sum(kept) - _ZERO * len(kept) + sum(doubled.translate(_LUHN_DOUBLED_CODES))
    else:
        backwards = digits[::-1]
        total = sum(map(int, backwards[::2])) + sum(
            map(_LUHN_DOUBLED.__getitem__, map(int, backwards[1::2]))
        )
    return total % 10 == 0


def card_prefix_ok(digits: str) -> bool:
    """Issuer prefixes of cards used in Korea: Visa, Mastercard, Amex, JCB, Diners,
    Discover, UnionPay, and domestic (BC, local) cards starting with 9."""
    length = len(digits)
    if digits[0] == "4":
        return length in (13, 16, 19)
    if digits[:2] in ("34", "37"):
        return length == 15
    two, four = int(digits[:2]), int(digits[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16
    if digits[:2] in ("35", "62", "65") or digits[:4] == "6011" or digits[0] == "9":
        return length in (16, 19)
    if digits[:2] in ("36", "38") or 300 <= int(digits[:3]) <= 305:
        return length in (14, 16)
    return False
