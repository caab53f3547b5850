"""The agent's at-rest keyring, built from ``[keys] at_rest_key`` (protocol.atrest).

No key configured: :data:`protocol.atrest.CLEAR` (stores write plaintext, as before issue 21;
``maildiode check`` and the start-up log say so). A key file that does not load stops the
start with its reason: mail must never be stored in clear because a key went missing.
"""

from __future__ import annotations

import logging

from agentkit.settings import KeysSection
from protocol.atrest import CLEAR, AtRest, AtRestKeyring

__all__ = ["at_rest_of"]

log = logging.getLogger(__name__)


def at_rest_of(keys: KeysSection) -> AtRest:
    """Raises protocol.errors.AtRestError when the configured key file is unusable."""
    if keys.at_rest_key is None:
        log.warning("[keys] at_rest_key is not set: mail and personal data are stored in clear")
        return CLEAR
    return AtRestKeyring.load(keys.at_rest_key)
