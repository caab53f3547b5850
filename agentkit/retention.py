"""How long the audit log keeps each kind of event, and the floors the law sets (issue 21.2).

Three kinds, each with its own setting and a floor no configuration goes below:

- **mail events** (every step of a mail's path: received, rendered, delivered, held, ...):
  the records of mail exchanged with the internet — 전자금융감독규정 제18조 3호 (≥ 1 year);
- **access records** (sign-ins, views of mail and findings, exports): 개인정보의 안전성
  확보조치 기준 제8조 (≥ 1 year; ≥ 2 years where unique identifiers are processed, as here);
- **records of access rights** (accounts, roles, passwords, second factors, tokens, directory
  imports): the same notice's 제5조 (≥ 3 years).

The default for all three is five years (전자금융거래법 제22조: transaction records up to five
years, then destroyed). Pure: ``agentkit.audit`` prunes with it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCESS_FLOOR_DAYS",
    "DAY_S",
    "MAIL_FLOOR_DAYS",
    "RIGHTS_ACTIONS",
    "RIGHTS_FLOOR_DAYS",
    "Retention",
]

DAY_S = 86400.0
MAIL_FLOOR_DAYS = 365  # 전자금융감독규정 제18조 3호
ACCESS_FLOOR_DAYS = 730  # 개인정보의 안전성 확보조치 기준 제8조 (unique identifiers processed)
RIGHTS_FLOOR_DAYS = 1095  # 개인정보의 안전성 확보조치 기준 제5조
# agentkit.access.Action values that record a grant, change or revocation of access rights.
RIGHTS_ACTIONS = (
    "account_created", "account_removed", "account_disabled", "account_enabled",
    "role_changed", "password_changed", "totp_reset", "totp_removed", "token_created",
    "token_revoked", "directory_imported", "directory_changed",
)  # fmt: skip


@dataclass(frozen=True)
class Retention:
    """Days each kind of event is kept (each already at or above its floor)."""

    mail_days: int = 1825
    access_days: int = 1825
    rights_days: int = 1825

    def __post_init__(self) -> None:
        for name, days, floor in (
            ("retention_days", self.mail_days, MAIL_FLOOR_DAYS),
            ("access_retention_days", self.access_days, ACCESS_FLOOR_DAYS),
            ("rights_retention_days", self.rights_days, RIGHTS_FLOOR_DAYS),
        ):
            if days < floor:
                raise ValueError(f"{name} = {days} is below the legal floor of {floor} days")

    def cutoffs(self, now: float) -> tuple[float, float, float]:
        """Events recorded before these times (mail, access, rights) may go."""
        return (now - self.mail_days * DAY_S, now - self.access_days * DAY_S,
                now - self.rights_days * DAY_S)  # fmt: skip
