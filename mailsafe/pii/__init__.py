"""Personal-data detection, Korean first: resident and foreigner registration numbers,
driver's licences, passports, payment cards and bank accounts, with positions and masking.

    detect(text) -> list[Finding]        # Finding(type, start, end, text, masked, confidence)
    mask_text(text, findings) -> str
"""

from __future__ import annotations

from mailsafe.pii.disguise import detect
from mailsafe.pii.mask import mask_text, mask_value
from mailsafe.pii.types import PII_TYPES, Finding, PiiType

__all__ = ["PII_TYPES", "Finding", "PiiType", "detect", "mask_text", "mask_value"]
