"""File names we generate. Never derived from a received name or from wire data."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

__all__ = ["NAME_RANDOM_BYTES", "is_our_name", "new_name"]

NAME_PREFIX = "md"
NAME_RANDOM_BYTES = 15  # 120 random bits -> 24 base32 characters: collisions are not a concern
_NAME = re.compile(r"md[a-z2-7]{24}(\.[a-z0-9]{1,8})?")


def new_name(random_bytes: Callable[[int], bytes], extension: str = "") -> str:
    """``md`` + 24 lower-case base32 characters + extension: short, fixed width, ASCII."""
    token = base64.b32encode(random_bytes(NAME_RANDOM_BYTES)).decode("ascii").lower()
    return f"{NAME_PREFIX}{token}{extension}"


def is_our_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None
