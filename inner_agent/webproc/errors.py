"""Errors of the web process and its supervision, one hierarchy.

WebProcessError
├── ChannelRefused    the child sent something that is not a message of the channel
└── WebProcessFailed  the child did not start: its own words, or how it ended (an OSError,
                      like the busy port the agent reports before it starts the child)
"""

from __future__ import annotations

__all__ = ["ChannelRefused", "WebProcessError", "WebProcessFailed"]


class WebProcessError(Exception):
    """Base of every refusal around the web process."""


class ChannelRefused(WebProcessError):
    """``what`` says what was wrong with the message, never its content."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"web process channel: {what}")


class WebProcessFailed(WebProcessError, OSError):
    pass
