"""The dashboard with several outer agents (issue 23.4, D74/D75): every stream and its outer
host, its report fresh or stale, its link, what it carries; an alarm for a stale one."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from agentkit.control import StatusReport
from inner_agent.console import figures
from inner_agent.console.places import ConsolePlaces
from inner_agent.console.status import alarms
from inner_agent.outbound.shares import Reported, SharedPublisher, rank
from inner_agent.reports import ReportStore
from protocol import Kind
from tests.agentkit.control_golden import QUIET_REPORT
from tests.inner.console.test_status import NOW, healthy
from tests.support.console import ADMIN, browser, console_site, sign_in


class _Stream:
    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        return 1

    def heartbeat_if_due(self) -> None:
        pass

    def close(self) -> None:
        pass


class _AllLive:
    def report_age_s(self, stream: str) -> float | None:
        return 1.0

    def fresh(self, stream: str) -> bool:
        return True


def _report(made_s: float, hostname: str) -> StatusReport:
    host = dataclasses.replace(QUIET_REPORT.host, hostname=hostname)
    return dataclasses.replace(QUIET_REPORT, made_ms=int(made_s * 1000), interval_s=30,
                               host=host)  # fmt: skip


def _places(root: Path) -> ConsolePlaces:
    state = root / "inner"
    reports = ReportStore(state / "reports.db")
    reports.add("inbound", b"\x01" * 16, 1, _report(NOW - 10, "mx-1"), int((NOW - 10) * 1000))
    reports.add("mx2", b"\x02" * 16, 1, _report(NOW - 400, "mx-2"), int((NOW - 400) * 1000))
    reports.close()
    (root / "outbound").mkdir()
    shares = SharedPublisher({"inbound": _Stream(), "mx2": _Stream()}, root / "outbound/shares.db",
                             _AllLive(), takeover_after_s=300, reported=lambda *_: Reported(),
                             audit=None)  # fmt: skip
    for n in range(40):
        bundle_id = n.to_bytes(16, "big")
        if rank(bundle_id, ["inbound", "mx2"])[0] == "mx2" and len(shares.open_shares()) < 3:
            shares.publish(b"mail", bundle_id)
    shares.close()
    return ConsolePlaces(state_dir=state, outbound_state=root / "outbound/state.db",
                         streams=("mx2",))  # fmt: skip


def test_every_stream_is_listed_with_its_host_report_and_share(tmp_path: Path) -> None:
    rows = figures.streams(_places(tmp_path), NOW)
    assert rows is not None
    found = {r["stream"]: r for r in rows}
    assert list(found) == ["inbound", "mx2"]
    assert (found["inbound"]["host"], found["inbound"]["report"]) == ("mx-1", "fresh")
    assert (found["mx2"]["host"], found["mx2"]["report"]) == ("mx-2", "stale")
    assert (found["mx2"]["agent"], found["mx2"]["outbound_stream"]) == ("outer-mx2", "mx2-out")
    assert (found["inbound"]["outbound_waiting"], found["mx2"]["outbound_waiting"]) == (0, 3)


def test_one_outer_agent_adds_nothing_to_the_dashboard(tmp_path: Path) -> None:
    places = dataclasses.replace(_places(tmp_path), streams=())
    assert figures.streams(places, NOW) is None


def test_a_stale_outer_agent_of_several_raises_its_alarm(tmp_path: Path) -> None:
    status = copy.deepcopy(healthy())
    status["streams"] = figures.streams(_places(tmp_path), NOW)
    found = alarms(status, "en", NOW)
    assert [a.code for a in found] == ["stream_report_stale"]
    assert "mx2" in found[0].message
    assert "takeover_after_s" in found[0].todo


def test_the_dashboard_page_shows_the_streams(tmp_path: Path) -> None:
    site = console_site(tmp_path / "site")
    data = site.listener.console_data()
    data.places = dataclasses.replace(_places(tmp_path), audit_path=data.places.audit_path)
    data.clock = lambda: NOW
    admin = browser(site.app)
    assert sign_in(admin, ADMIN).status_code == 303
    page = admin.get("/").text
    assert 'id="streams"' in page
    assert 'data-stream="mx2" data-report="stale"' in page
    # on a phone each row becomes a card, each value under its label (no sideways scrolling)
    assert '<table class="counts cards">' in page
    assert '<td data-label="스트림">mx2</td>' in page
    assert 'data-stream="inbound" data-report="fresh"' in page
    assert "mx2-out" in page
