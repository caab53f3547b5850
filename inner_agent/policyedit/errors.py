"""The policy editor's refusals: each says what, where and why, in words for the page.

PolicyEditError
├── RuleNotFound     no rule of that id in the file
├── StaleEdit        the file changed since the page showed it (another editor, a hand edit)
├── RulesRefused     the file as it would be saved does not validate (maildiode check's words)
└── NoRulesFile      the direction has no rules file configured
"""

from __future__ import annotations

__all__ = ["NoRulesFile", "PolicyEditError", "RuleNotFound", "RulesRefused", "StaleEdit"]


class PolicyEditError(Exception):
    pass


class RuleNotFound(PolicyEditError):
    pass


class StaleEdit(PolicyEditError):
    pass


class RulesRefused(PolicyEditError):
    pass


class NoRulesFile(PolicyEditError):
    pass
