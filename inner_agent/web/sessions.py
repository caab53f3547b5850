"""Signed-in sessions: made at sign-in and only then, ended at sign-out, after ``idle_s``
without a request, or ``absolute_s`` after sign-in, whichever comes first.

The session id is 256 random bits in the ``md_session`` cookie; the database keeps who and
when (``store.SignInStore``). A request refreshes "last seen" at most once a minute, so
reading pages does not write on every request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from inner_agent.web.store import SignInStore

__all__ = ["Sessions"]

# How stale "last seen" may get before a request writes it again.
TOUCH_EVERY_S = 60.0
# Session ids we make are 43 characters; anything far off is not ours and not looked up.
MIN_ID_CHARS, MAX_ID_CHARS = 20, 100


class Sessions:
    def __init__(
        self, store: SignInStore, *, idle_s: float, absolute_s: float, clock: Callable[[], float]
    ) -> None:
        self.store, self.idle_s, self.absolute_s, self.clock = store, idle_s, absolute_s, clock

    def start(self, user: str) -> str:
        """A new session for ``user`` (a fresh id: no session fixation); expired ones go."""
        now = self.clock()
        self.store.drop_sessions_before(now - self.absolute_s, now - self.idle_s)
        session_id = secrets.token_urlsafe(32)
        self.store.add_session(session_id, user, now)
        return session_id

    def user_of(self, untrusted_id: str) -> str | None:
        """Who is signed in under this session id, or None (unknown, idle or too old)."""
        if not MIN_ID_CHARS <= len(untrusted_id) <= MAX_ID_CHARS:
            return None
        found = self.store.session(untrusted_id)
        if found is None:
            return None
        user, created, last_seen = found
        now = self.clock()
        if now - created >= self.absolute_s or now - last_seen >= self.idle_s:
            self.store.drop_session(untrusted_id)
            return None
        if now - last_seen >= TOUCH_EVERY_S:
            self.store.touch_session(untrusted_id, now)
        return user

    def end(self, session_id: str) -> None:
        self.store.drop_session(session_id)
