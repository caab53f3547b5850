"""LinkReader: a FolderIntake and a Receiver in one poll loop.

poll(handler):
  1. claim settled files (and, once, files left in the work folder by a previous run)
  2. read + verify each; refused files are quarantined (reason file, log line, counter)
  3. for every complete bundle not yet done: assemble (hash check), handler(bundle), mark
     done (committed at once; synced to disk once per ``done_group`` marks, or when a pass
     finds nothing to deliver), delete its chunk files once its mark is synced — also
     between the files of step 2, whenever a share of the receiver's in-flight limit is
     complete, so that a backlog of whole bundles (the receiving agent was down, say) never
     fills the room meant for partial ones
  4. at most once a second (``HOUSEKEEPING_S``): quarantine partial bundles past their
     time-to-live; report overdue gaps; silent-link alarm (each is a query or a transaction,
     and their clocks run in minutes: once per poll cost a commit per mail on a busy link)
  5. sum up the refusals whose interval ended (one log line per reason; ``refusal_summaries``
     hands them to the agent's audit log)
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from protocol.errors import LocalError, Reason, RemoteError
from protocol.intake import ClaimedFile, FolderIntake
from protocol.quarantine import MAX_PENDING_SUMMARIES
from protocol.receiver import Accepted, LinkStatus, ReceivedBundle, Receiver
from protocol.refusals import RefusalSummary

__all__ = ["Handler", "LinkReader"]

log = logging.getLogger("protocol.reader")

Handler = Callable[[ReceivedBundle], None]

# Complete bundles are delivered whenever this fraction of the receiver's in-flight limit has
# been completed during a pass: they leave long before the limit (meant for partial bundles)
# could refuse a valid chunk.
DELIVER_SHARE = 4
# Time-driven checks (expiry, gaps, pruning, silence) run at most this often, on the receiver's
# clock; their own thresholds are minutes to days.
HOUSEKEEPING_S = 1.0


class LinkReader:
    def __init__(self, intake: FolderIntake, receiver: Receiver, *, done_group: int = 1) -> None:
        """``done_group``: how many done marks share one sync to disk (the marks wait for it
        at most until a pass finds nothing to deliver). Each mark is committed before the next
        bundle is handled, so a killed process hands at most one bundle to the handler again;
        after a power cut, the bundles whose marks were not yet synced (fewer than
        ``done_group``) and the one in hand are handed over again."""
        if done_group < 1:
            raise LocalError(f"done_group {done_group} is not a positive count")
        self.intake = intake
        self.receiver = receiver
        self.done_group = done_group
        self._unsynced: list[list[Path]] = []  # per done mark not yet synced: its chunk files
        self._recovered = False
        self._silent = False
        self._summaries: list[RefusalSummary] = []

    def poll(self, handler: Handler) -> int:
        """One pass; returns the number of bundles handed to ``handler``."""
        delivered = 0
        if not self._recovered:
            delivered += self._recover(handler)
        delivered += self._accept_all(self.intake.claim_ready(), handler)
        if delivered == 0:  # nothing more came: the done marks waiting for a sync get it now
            self._sync_marks()
        if self.receiver.due(HOUSEKEEPING_S):
            self._expire()
            self.receiver.new_gaps()
            self.receiver.prune_if_due()
            self._check_silence()
        self._summaries += self.intake.refusal_summaries()
        del self._summaries[:-MAX_PENDING_SUMMARIES]
        return delivered

    def run_once_or_wait(self, handler: Handler, rescan_s: float) -> int:
        """poll(), and when nothing happened wait for a file event or ``rescan_s``."""
        delivered = self.poll(handler)
        if delivered == 0:
            self.intake.wait(rescan_s)
        return delivered

    def recover_again(self) -> None:
        """Look at the work folder again at the next poll, as at a start: a file claimed there
        by another reader of the same state that stopped before handling it (an agent that
        lost its fencing lease in the middle of a pass) is verified and handled here."""
        self._recovered = False

    def _recover(self, handler: Handler) -> int:
        """Files claimed before a restart but not recorded as held are verified again."""
        self._recovered = True
        # A marked bundle's file is in the work folder until its mark is synced; verified
        # again now, it would be deleted as a duplicate of a mark a power cut may still undo.
        self._sync_marks()
        leftovers = [c for c in self.intake.leftovers() if not self.receiver.holds(c.path)]
        return self._accept_all(leftovers, handler)

    def _accept_all(self, claimed_files: list[ClaimedFile], handler: Handler) -> int:
        """Accept every file; deliver complete bundles whenever a share of the in-flight
        limit is complete, and once at the end."""
        deliver_every = max(1, self.receiver.max_bundles_in_flight // DELIVER_SHARE)
        delivered = completed = 0
        for claimed in claimed_files:
            if self._accept(claimed) is Accepted.COMPLETE:
                completed += 1
                if completed >= deliver_every:
                    delivered += self._deliver(handler)
                    completed = 0
        return delivered + self._deliver(handler)

    def _accept(self, claimed: ClaimedFile) -> Accepted | None:
        try:
            untrusted = self.intake.read(claimed)
            outcome = self.receiver.accept(claimed.path, untrusted)
        except RemoteError as exc:
            self._quarantine(claimed, exc.reason, exc.detail)
            return None
        except LocalError:
            log.exception("cannot process %s; leaving it for the next start", claimed.path)
            return None
        if outcome in (Accepted.DUPLICATE, Accepted.HEARTBEAT):
            self.intake.discard(claimed.path)
        return outcome

    def _quarantine(self, claimed: ClaimedFile, reason: Reason, detail: str) -> None:
        """The persistent counters say how many files were refused and, of those, how many
        were deleted instead of kept (over the quarantine's budget or sample)."""
        self.receiver.count(f"quarantined:{reason.value}")
        if self.intake.quarantine(claimed.path, reason, detail, claimed.original_name) is None:
            self.receiver.count("quarantine_dropped")

    def refusal_summaries(self) -> list[RefusalSummary]:
        """The refusals summed up per reason and interval since the last call (for an audit
        log); each was logged once already."""
        taken, self._summaries = self._summaries, []
        return taken

    def _deliver(self, handler: Handler) -> int:
        """Hand every complete bundle to ``handler`` and mark those it took done. Each mark is
        committed before the next bundle is handled; every ``done_group``-th is synced to
        disk, which makes the marks before it durable too, and only then do their chunk files
        go (the rest wait for a later sync: :meth:`_sync_marks`)."""
        delivered = 0
        for bundle_id in self.receiver.complete():
            if not self._handled(bundle_id, handler):
                continue
            delivered += 1
            durable = len(self._unsynced) + 1 >= self.done_group
            self._unsynced.append(self.receiver.mark_done(bundle_id, durable=durable))
            if durable:
                self._discard_synced()
        return delivered

    def _sync_marks(self) -> None:
        """Sync the done marks that wait for it, then delete their bundles' chunk files."""
        if self._unsynced:
            self.receiver.sync_done()
            self._discard_synced()

    def _discard_synced(self) -> None:
        for paths in self._unsynced:
            for path in paths:
                self.intake.discard(path)
        self._unsynced = []

    def _handled(self, bundle_id: bytes, handler: Handler) -> bool:
        """Whether ``handler`` took the bundle (a bundle that does not assemble is dropped to
        the quarantine; one whose handler fails stays for the next pass)."""
        try:
            bundle = self.receiver.assemble(bundle_id)
        except RemoteError as exc:
            self._drop(bundle_id, exc.reason, exc.detail)
            return False
        try:
            handler(bundle)
        except Exception:
            log.exception("handler failed for seq %d; will retry", bundle.seq)
            self.receiver.count("handler_errors")
            return False
        return True

    def _drop(self, bundle_id: bytes, reason: Reason, detail: str) -> None:
        self.receiver.count(f"quarantined:{reason.value}")  # once per bundle
        for path in self.receiver.drop(bundle_id):
            if self.intake.quarantine(path, reason, detail, f"bundle {bundle_id.hex()}") is None:
                self.receiver.count("quarantine_dropped")

    def _expire(self) -> None:
        for bundle_id in self.receiver.expired_partials():
            self._drop(bundle_id, Reason.INCOMPLETE, "partial bundle outlived its time-to-live")

    def _check_silence(self) -> None:
        silent = self.receiver.status_silent()
        if silent and not self._silent:
            log.error("link %s is silent: no heartbeat or data for %.0f s",
                      self.receiver.stream, self.receiver.silence_alarm_s)  # fmt: skip
            self.receiver.count("silence_alarms")
        elif not silent and self._silent:
            log.info("link %s is alive again", self.receiver.stream)
        self._silent = silent

    def status(self) -> LinkStatus:
        return self.receiver.status()

    def close(self) -> None:
        try:
            self._sync_marks()
        except (LocalError, OSError, sqlite3.Error) as exc:  # the files stay: next start, they
            # are found done (or, if the marks were lost with the power, handled again)
            log.warning("cannot sync the last done marks of link %s (%s); their chunk files "
                        "stay in the work folder", self.receiver.stream, exc)  # fmt: skip
        self.intake.close()
        self.receiver.close()
