"""``[inbound]`` of ``inner.toml``: the receive filters' rules and their checking. Documented in
docs/configuration.md under "inner.toml [inbound]"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from agentkit.settings import Section, resolve_path

__all__ = ["DEFAULT_CHECK_S", "InboundSection", "example_toml_section"]

# A minute: an administrator who saved the rules file sees them enforced within one, and
# reading a small file and the directory once a minute costs nothing (SIGHUP: at once).
DEFAULT_CHECK_S = 60.0


def _resolve_optional(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else resolve_path(value, info)


class InboundSection(Section):
    """Receive filters: rules managed here, enforced by the outer agent (docs/policy.md)."""

    # The inbound rules (docs/policy.md, "Inbound rules"); none: the built-in rules (carry
    # everything, the unique identifiers masked).
    rules_file: Path | None = None
    # The rules file and the directory are read again this often (and at once on SIGHUP); a
    # change is published to the outer agent as a new policy version.
    check_s: float = Field(default=DEFAULT_CHECK_S, ge=1, le=86_400)

    _paths = field_validator("rules_file", mode="before")(_resolve_optional)

    @field_validator("rules_file")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"rules file {value} does not exist")
        return value


def example_toml_section() -> str:
    return _EXAMPLE


_EXAMPLE = """\
# Receive filters (docs/policy.md, "Inbound rules"): rules managed here, published to the outer
# agent, which enforces them on the original. Needs [outbound] (the directory, the out link).
# [inbound]
# rules_file = "inbound-rules.toml"   # none: built-in rules (unique identifiers masked)
# check_s = 60                        # rules file and directory read again (also on SIGHUP)
"""
