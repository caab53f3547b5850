"""The console's words, Korean (the default) and English (``[console] language = "en"``).

``words(language)`` is a mapping from a key to the text; a key missing in a language is a
KeyError when a page is drawn (a test draws every page in both languages). Outcome and
direction names come from the mail index's exports, access actions from ``agentkit.access``,
so a spreadsheet and a page name a thing alike. ``duration`` and ``size`` write figures as
people read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from agentkit.access import ACTION_NAMES_KO, Action
from agentkit.mailindex.export import DIRECTION_LABELS, GROUP_LABELS, OUTCOME_LABELS
from inner_agent.outbound.notice_mail import TYPE_NAMES
from inner_agent.web.roles import ROLE_NAMES_KO, Role

__all__ = ["LANGUAGES", "Language", "duration", "size", "words"]

Language = Literal["ko", "en"]
LANGUAGES: tuple[Language, ...] = ("ko", "en")

_WORDS: dict[str, tuple[str, str]] = {
    # -- frame
    "console": ("maildiode 관리 콘솔", "maildiode console"),
    "nav.dashboard": ("대시보드", "Dashboard"),
    "nav.mail": ("메일 검색", "Mail"),
    "nav.stats": ("통계", "Statistics"),
    "nav.access": ("접속기록", "Access records"),
    "nav.directory": ("인사정보", "Directory"),
    "nav.requests": ("승인 요청", "Approvals"),
    "nav.policy": ("규칙", "Rules"),
    "signout": ("로그아웃", "Sign out"),
    "times_in": ("시각 기준", "times in"),
    "unavailable": (
        "이 에이전트에는 감사 기록 저장소가 없어 보여 줄 수 없습니다.",
        "This agent has no audit store to read.",
    ),
    "unavailable_title": ("볼 수 없음", "Not available"),
    "search": ("검색", "Search"),
    "reset": ("조건 지우기", "Clear"),
    "previous": ("이전", "Previous"),
    "next": ("다음", "Next"),
    "export_xlsx": ("엑셀로 내보내기", "Export to Excel"),
    "export_csv": ("CSV로 내보내기", "Export CSV"),
    "total": ("전체", "total"),
    "count_unit": ("건", ""),
    "not_found": ("찾을 수 없음", "Not found"),
    "not_found_mail": (
        "메일을 찾을 수 없거나 볼 권한이 없습니다.",
        "No such mail, or not one you may see.",
    ),
    "bad_request": ("검색 조건을 쓸 수 없습니다", "The search cannot be used"),
    "back": ("돌아가기", "Back"),
    # -- dashboard
    "dash.title": ("대시보드", "Dashboard"),
    "dash.alarms": ("경보", "Alarms"),
    "dash.no_alarms": (
        "경보 없음: 양쪽 에이전트와 링크가 정상입니다.",
        "No alarms: both agents and the link are well.",
    ),
    "dash.todo": ("조치", "What to do"),
    "dash.mail": ("메일 처리 현황", "Mail"),
    "dash.today": ("오늘", "Today"),
    "dash.week": ("최근 7일", "Last 7 days"),
    "dash.inbound": ("수신 (외부→내부)", "Inbound (internet → intranet)"),
    "dash.outbound": ("발신 (내부→외부)", "Outbound (intranet → internet)"),
    "dash.per_day": ("일별 메일 수", "Mails per day"),
    "dash.approvals": ("승인 대기", "Waiting for approval"),
    "dash.pending": ("대기 중인 요청", "Requests waiting"),
    "dash.escalated": ("상위 이관", "Escalated"),
    "dash.oldest": ("가장 오래 기다린 것", "Oldest waiting"),
    "dash.link": ("링크 상태", "Link"),
    "dash.link_in": (
        "수신 링크 (외부망→내부망, 내부망 에이전트가 받음)",
        "Inbound link (received by the inner agent)",
    ),
    "dash.link_out": (
        "발신 링크 (내부망→외부망, 외부망 에이전트가 받음)",
        "Outbound link (received by the outer agent)",
    ),
    "dash.last_chunk": ("마지막 수신", "Last chunk"),
    "dash.last_heartbeat": ("마지막 하트비트", "Last heartbeat"),
    "dash.highest_seq": ("최고 일련번호", "Highest sequence"),
    "dash.gaps": ("빠진 번들", "Gaps"),
    "dash.refused_files": ("거부된 파일 (격리)", "Refused files (quarantined)"),
    "dash.refused_bundles": ("거부된 번들 (격리)", "Refused bundles (quarantined)"),
    "dash.silent": ("무응답", "silent"),
    "dash.never": ("받은 적 없음", "never"),
    "dash.queues": ("대기열", "Queues"),
    "dash.injection": ("내부 메일 서버로 보낼 알림", "Notifications for the internal server"),
    "dash.outbound_waiting": ("내부망에서 나가지 않은 발신 메일", "Outbound mail not yet sent on"),
    "dash.notices": ("보낼 안내 메일 (발신자·승인자)", "Notices for senders and approvers"),
    "dash.spool": ("외부망 수신 스풀", "Outer inbound spool"),
    "dash.delivery": ("외부망 발송 대기", "Outer delivery queue"),
    "dash.waiting": ("대기", "waiting"),
    "dash.retrying": ("재시도 중", "retrying"),
    "dash.quarantined": ("격리", "quarantined"),
    "dash.refused": ("거부됨", "refused"),
    "dash.oldest_waiting": ("가장 오래 기다린 메일", "oldest waiting"),
    "dash.nothing_waits": ("대기 없음", "nothing waits"),
    "dash.hosts": ("서버 상태", "Hosts"),
    "dash.inner_host": ("내부망 에이전트 서버", "Inner agent host"),
    "dash.outer_host": (
        "외부망 에이전트 서버 (상태 보고 기준)",
        "Outer agent host (from its report)",
    ),
    "dash.hostname": ("호스트", "Host"),
    "dash.streams": ("스트림 (외부망 에이전트별)", "Streams (one per outer agent)"),
    "dash.stream": ("스트림", "Stream"),
    "dash.stream_report": ("상태 보고", "Report"),
    "dash.stream_link": ("링크", "Link"),
    "dash.stream_in": ("받은 번들", "Bundles in"),
    "dash.stream_out": ("발신 스트림", "Outbound stream"),
    "dash.stream_out_waiting": (
        "전달 보고 대기 발신 메일",
        "Outbound mail not yet reported delivered",
    ),
    "dash.lease": ("이중화 (상태 잠금)", "Standby and lease"),
    "dash.lease_role": ("이 에이전트의 역할", "This agent's role"),
    "dash.role_active": ("운영 (잠금 보유)", "active (holds the lease)"),
    "dash.role_standby": ("대기 (만료되면 넘겨받음)", "standby (takes over when it expires)"),
    "dash.role_unheld": ("보유자 없음", "unheld"),
    "dash.lease_this": ("이 에이전트", "This agent"),
    "dash.lease_holder": ("잠금 보유자", "Lease holder"),
    "dash.lease_token": ("펜싱 토큰", "Fencing token"),
    "dash.lease_expiry": ("잠금 만료", "Lease expires"),
    "dash.lease_left": ("{left} 후", "in {left}"),
    "dash.lease_expired": ("만료됨", "expired"),
    "dash.fresh": ("정상", "fresh"),
    "dash.stale": ("지연", "stale"),
    "dash.missing": ("없음", "missing"),
    "dash.alive": ("정상", "alive"),
    "dash.uptime": ("서버 유지 시간", "Uptime"),
    "dash.cpu": ("CPU 사용량", "CPU"),
    "dash.load": ("부하", "Load"),
    "dash.memory": ("메모리 사용량", "Memory"),
    "dash.disk": ("디스크 사용량", "Disk"),
    "dash.used_of": ("사용 {used} / 전체 {total}", "{used} used of {total}"),
    "dash.report": ("외부망 상태 보고", "Outer agent's status report"),
    "dash.report_fresh": (
        "최신 (만든 지 {age}, 주기 {interval})",
        "fresh (made {age} ago, every {interval})",
    ),
    "dash.report_stale": (
        "오래됨: {age} 전 보고 (기준 {limit}). 아래 외부망 수치는 그때의 값입니다.",
        "STALE: made {age} ago (limit {limit}); the outer figures below are that old.",
    ),
    "dash.report_missing": (
        "받은 보고 없음: 외부망 수치를 알 수 없습니다.",
        "No report received: the outer side's figures are unknown.",
    ),
    "dash.not_configured": ("이 에이전트에 없음", "not on this agent"),
    # -- mail search
    "mail.title": ("메일 검색", "Mail search"),
    "mail.in": ("수신 메일", "Received"),
    "mail.out": ("발신 메일", "Sent"),
    "mail.all": ("전체", "Both"),
    "mail.scope_security": (
        "보안 담당자는 보류·차단·격리·개인정보 검출 메일만 봅니다.",
        "Security officers see held, blocked, quarantined and personal-data mail only.",
    ),
    "f.q": ("전체 검색", "Any field"),
    "f.since": ("시작일", "From"),
    "f.until": ("종료일", "Until"),
    "f.sender": ("보낸 사람", "Sender"),
    "f.recipient": ("받는 사람", "Recipient"),
    "f.domain": ("도메인", "Domain"),
    "f.subject": ("제목", "Subject"),
    "f.client": ("접속 IP", "Client address"),
    "f.outcome": ("처리 결과", "Outcome"),
    "f.rule": ("규칙", "Rule"),
    "f.reason": ("사유", "Reason"),
    "f.department": ("부서", "Department"),
    "f.attachment": ("첨부파일 이름", "Attachment name"),
    "f.attachment_count": ("첨부 수", "Attachments"),
    "f.attachment_count_min": ("첨부 수 (이상)", "Attachments (at least)"),
    "f.direction": ("방향", "Direction"),
    "f.any": ("(전체)", "(any)"),
    "f.more": ("상세 조건", "More filters"),
    "col.time": ("시각", "Time"),
    "col.direction": ("방향", "Direction"),
    "col.sender": ("보낸 사람", "Sender"),
    "col.recipients": ("받는 사람", "Recipients"),
    "col.subject": ("제목", "Subject"),
    "col.outcome": ("처리 결과", "Outcome"),
    "col.client": ("접속 IP", "Client"),
    "col.attachments": ("첨부", "Attachments"),
    "mail.none_found": ("조건에 맞는 메일이 없습니다.", "No mail matches."),
    "mail.found": ("{total}건 중 {first}-{last}", "{first}-{last} of {total}"),
    "mail.no_subject": ("(제목 없음)", "(no subject)"),
    "mail.people": (
        "디렉터리에서 이름에 ‘{text}’이(가) 들어간 사람",
        "People of the directory whose name contains ‘{text}’",
    ),
    "mail.people_more": ("{total}명 중 {shown}명", "{shown} of {total}"),
    "mail.people_mail": ("이 사람의 메일", "this person's mail"),
    "mail.people_disabled": ("사용 중지", "disabled"),
    # -- mail detail
    "detail.title": ("메일 상세", "Mail"),
    "detail.id": ("메일 ID", "Mail id"),
    "detail.last_time": ("마지막 처리 시각", "Last event"),
    "detail.size": ("크기", "Size"),
    "detail.agents": ("기록한 에이전트", "Recorded by"),
    "detail.trail": ("처리 경로 (SMTP 접수부터 끝까지)", "Trail (from SMTP intake to the end)"),
    "detail.agent": ("에이전트", "Agent"),
    "detail.step": ("단계", "Step"),
    "detail.details": ("내용", "Details"),
    "detail.findings": ("발견된 개인정보 (가려서 표시)", "Personal data found (masked)"),
    "detail.finding_type": ("종류", "Type"),
    "detail.finding_value": ("값", "Value"),
    "detail.finding_where": ("위치", "Where"),
    "detail.no_findings": ("발견된 개인정보가 없습니다.", "No personal data was found."),
    "detail.no_scan": (
        "발신 검사 기록이 없습니다 (수신 메일이거나 기록 보관 기간이 지남).",
        "No outbound scan is on record (an inbound mail, or kept no longer).",
    ),
    "detail.withheld": ("전달하지 않은 첨부파일", "Attachments withheld"),
    "detail.withheld_name": ("이름", "Name"),
    "detail.withheld_type": ("형식", "Type"),
    "detail.withheld_size": ("크기", "Size"),
    "detail.withheld_reason": ("사유", "Reason"),
    "detail.no_withheld": ("전달하지 않은 첨부파일이 없습니다.", "No attachment was withheld."),
    "detail.picture": ("전달된 그림", "Delivered picture"),
    "detail.picture_link": (
        "가린 그림 보기 (조회가 접속기록에 남습니다)",
        "Show the masked picture (recorded as an access)",
    ),
    "detail.picture_pages": (
        "쪽마다 (본문, 첨부파일의 쪽):",
        "Page by page (the body, each attachment's pages):",
    ),
    "detail.no_picture": (
        "보관된 그림이 없습니다. 수신 메일의 그림은 받는 사람의 메일함에만 있습니다.",
        "No picture is kept. An inbound mail's pictures are only in its recipients' mailboxes.",
    ),
    "detail.state": ("발신 처리 상태", "Outbound state"),
    "detail.decided_by": ("결정한 사람", "Decided by"),
    "detail.recorded": ("이 조회는 접속기록에 남습니다.", "This view is recorded as an access."),
    # -- statistics
    "stats.title": ("통계", "Statistics"),
    "stats.by": ("기간 단위", "Period"),
    "stats.group": ("분류", "Group by"),
    "stats.by.day": ("일별", "per day"),
    "stats.by.month": ("월별", "per month"),
    "stats.by.year": ("연도별", "per year"),
    "stats.period": ("기간", "Period"),
    "stats.count": ("메일 수", "Mails"),
    "stats.per_period": ("기간별 메일 수", "Mails per period"),
    "stats.per_group": ("분류별 메일 수 (상위 {n})", "Mails per group (top {n})"),
    "stats.none": ("조건에 맞는 메일이 없습니다.", "No mail matches."),
    "stats.no_value": ("(값 없음)", "(none)"),
    "stats.cut": (
        "앞의 {shown}행만 보입니다 ({more}행 더 있음). 전체는 내려받기로 보십시오.",
        "The first {shown} rows are shown ({more} more); the download has them all.",
    ),
    # -- access records
    "access.title": ("접속기록", "Access records"),
    "access.account": ("계정", "Account"),
    "access.address": ("접속 주소", "Address"),
    "access.action": ("행위", "Action"),
    "access.mail": ("메일", "Mail"),
    "access.detail": ("내용", "Detail"),
    "access.count": ("건수", "Count"),
    "access.none": ("조건에 맞는 기록이 없습니다.", "No record matches."),
    "access.review": ("월간 점검 보고서 (xlsx)", "Monthly review (xlsx)"),
    "access.month": ("월 (YYYY-MM)", "Month (YYYY-MM)"),
    "access.download": ("내려받기", "Download"),
    # -- alarms: what is wrong, and what to do
    "alarm.outer_report_missing": (
        "외부망 에이전트의 상태 보고를 받은 적이 없습니다.",
        "No status report of the outer agent has arrived.",
    ),
    "todo.outer_report_missing": (
        "외부망 에이전트가 실행 중인지, 이 버전인지, 수신 방향 망연계가 "
        "파일을 옮기는지 확인하십시오.",
        "Check that the outer agent runs this version and that the linkage carries files inward.",
    ),
    "alarm.outer_report_stale": (
        "외부망 에이전트의 마지막 상태 보고가 {age_s} 전 것입니다 (기준 {limit_s}).",
        "The outer agent's last status report is {age_s} old (limit {limit_s}).",
    ),
    "todo.outer_report_stale": (
        "수신 방향 망연계(캐리어)와 외부망 에이전트가 동작하는지 "
        "확인하십시오. "
        "외부망 수치는 그때의 값입니다.",
        "Check the inbound linkage (carrier) and the outer agent; the "
        "outer figures shown are that old.",
    ),
    "alarm.stream_report_missing": (
        "외부망 에이전트 {stream}의 상태 보고를 아직 받지 못했습니다.",
        "No status report from outer agent {stream} yet.",
    ),
    "todo.stream_report_missing": (
        "그 외부망 에이전트가 실행 중인지, 그 채널의 망연계가 파일을 옮기는지 확인하십시오.",
        "Check that this outer agent runs and that its channel of the linkage carries files.",
    ),
    "alarm.stream_report_stale": (
        "외부망 에이전트 {stream}의 마지막 상태 보고가 {age_s} 전 것입니다 (기준 {limit_s}).",
        "Outer agent {stream}'s last status report is {age_s} old (limit {limit_s}).",
    ),
    "todo.stream_report_stale": (
        "그 서버와 채널을 확인하십시오. 그 에이전트 몫의 발신 메일은 "
        "streams.takeover_after_s 뒤 다른 외부망 에이전트로 옮겨집니다.",
        "Check that host and its channel; its share of outbound mail moves to another outer "
        "agent after streams.takeover_after_s.",
    ),
    "alarm.stream_silent": (
        "외부망 에이전트 {stream}의 링크에서 {since_s} 동안 아무것도 오지 않았습니다.",
        "Nothing arrived on outer agent {stream}'s link for {since_s}.",
    ),
    "todo.stream_silent": (
        "그 외부망 에이전트와 그 채널의 망연계를 확인하십시오.",
        "Check this outer agent and its channel of the linkage.",
    ),
    "alarm.inbound_link_silent": (
        "수신 링크에서 {since_s} 동안 아무것도 받지 못했습니다.",
        "Nothing has arrived on the inbound link for {since_s}.",
    ),
    "alarm.inbound_link_never": (
        "수신 링크에서 아직 아무것도 받지 못했습니다.",
        "Nothing has arrived on the inbound link yet.",
    ),
    "todo.inbound_link_never": (
        "외부망 에이전트가 실행 중인지, 망연계가 수신 폴더(link.recv_dir)로 파일을 옮기는지 "
        "확인하십시오.",
        "Check that the outer agent runs and that the linkage moves files into link.recv_dir.",
    ),
    "todo.inbound_link_silent": (
        "망연계 제품과 외부망 에이전트를 확인하십시오 (maildiode status -c inner.toml).",
        "Check the linkage product and the outer agent (maildiode status -c inner.toml).",
    ),
    "alarm.inbound_gaps": (
        "수신 링크에 빠진 번들이 {count}개 있습니다.",
        "{count} bundle(s) are missing on the inbound link.",
    ),
    "todo.inbound_gaps": (
        "망연계 전송 기록을 확인하고, 외부망에서 maildiode resend 로 다시 보내십시오.",
        "Check the linkage's transfer log and send them again from the outer "
        "side (maildiode resend).",
    ),
    "alarm.inbound_refused": (
        "수신 링크에서 거부된 파일 {files}개, 거부된 번들 {bundles}개가 격리되어 있습니다.",
        "{files} file(s) and {bundles} bundle(s) refused on the inbound link are in quarantine.",
    ),
    "todo.inbound_refused": (
        "사유 파일(*.reason.json)을 확인하고, 원인을 고친 뒤 maildiode "
        "requeue 로 다시 처리하십시오 (docs/operations.md).",
        "Read the reason files (*.reason.json); once the cause is fixed, "
        "run maildiode requeue (docs/operations.md).",
    ),
    "alarm.outbound_link_silent": (
        "외부망 에이전트가 발신 링크에서 아무것도 받지 못하고 있습니다.",
        "The outer agent receives nothing on the outbound link.",
    ),
    "todo.outbound_link_silent": (
        "발신 방향(내부→외부) 망연계가 파일을 옮기는지 확인하십시오.",
        "Check that the outbound linkage carries files outward.",
    ),
    "alarm.outbound_gaps": (
        "발신 링크에 빠진 번들이 {count}개 있습니다.",
        "{count} bundle(s) are missing on the outbound link.",
    ),
    "todo.outbound_gaps": (
        "망연계 전송 기록을 확인하고, 내부망에서 maildiode resend 로 다시 보내십시오.",
        "Check the linkage's transfer log and send them again from the inner "
        "side (maildiode resend).",
    ),
    "alarm.injection_waiting": (
        "내부 메일 서버로 보낼 알림이 {age_s} 동안 기다리고 있습니다.",
        "A notification has waited {age_s} for the internal server.",
    ),
    "todo.injection_waiting": (
        "내부 메일 서버가 동작하는지 확인하십시오. 마지막 오류: {error}",
        "Check the internal mail server. Last error: {error}",
    ),
    "alarm.injection_refused": (
        "내부 메일 서버가 알림 {count}건을 거부했습니다.",
        "The internal mail server refused {count} notification(s).",
    ),
    "todo.injection_refused": (
        "postmaster 보고와 inner/quarantine 의 refused-*.eml 을 확인하십시오.",
        "Read the postmaster reports and inner/quarantine/refused-*.eml.",
    ),
    "alarm.outbound_stuck": (
        "발신 메일 {count}건이 {age_s} 동안 내부망에서 나가지 못했습니다.",
        "{count} outbound mail(s) have not left the inner side for {age_s}.",
    ),
    "todo.outbound_stuck": (
        "내부망 에이전트 로그의 발신 단계 오류와 발신 링크 폴더를 확인하십시오.",
        "Check the inner agent's log for outbound errors, and the outbound link folder.",
    ),
    "alarm.delivery_stuck": (
        "외부망 발송 대기 메일 {count}건 중 가장 오래된 것이 {age_s} "
        "기다렸습니다 (재시도 {retrying}건).",
        "The oldest of {count} mail(s) in the outer delivery queue has "
        "waited {age_s} ({retrying} retrying).",
    ),
    "todo.delivery_stuck": (
        "외부망 에이전트의 중계 서버(relay) 연결과 받는 쪽 서버의 응답을 확인하십시오.",
        "Check the outer agent's relay and the receiving servers' replies.",
    ),
    "alarm.delivery_quarantine": (
        "외부망에서 발송하지 못하고 격리한 메일이 {count}건 있습니다.",
        "{count} outbound mail(s) are quarantined on the outer side.",
    ),
    "todo.delivery_quarantine": (
        "외부망 에이전트의 outbound/quarantine 사유를 확인하십시오.",
        "Read the reasons in the outer agent's outbound/quarantine.",
    ),
    "alarm.spool_quarantine": (
        "외부망에서 격리한 수신 메일이 {count}건 있습니다.",
        "{count} inbound mail(s) are quarantined on the outer side.",
    ),
    "todo.spool_quarantine": (
        "외부망 에이전트의 inbound/quarantine 사유를 확인하십시오 (docs/operations.md).",
        "Read the reasons in the outer agent's inbound/quarantine (docs/operations.md).",
    ),
    "alarm.spool_stuck": (
        "외부망 수신 스풀에서 메일이 {age_s} 동안 기다리고 있습니다.",
        "A mail has waited {age_s} in the outer inbound spool.",
    ),
    "todo.spool_stuck": (
        "외부망 에이전트의 변환(렌더링) 프로세스와 로그를 확인하십시오.",
        "Check the outer agent's rendering processes and its log.",
    ),
    "alarm.approvals_waiting": (
        "승인 대기 {count}건 중 가장 오래된 것이 {age_s} 기다렸습니다.",
        "The oldest of {count} approval request(s) has waited {age_s}.",
    ),
    "todo.approvals_waiting": (
        "승인자에게 연락하거나 부재 시 대리 승인자를 지정하십시오.",
        "Contact the approver, or name a delegate while they are away.",
    ),
    "alarm.audit_broken": (
        "감사 기록의 해시 체인이 깨졌습니다: 이벤트 {event} — {problem}",
        "The audit log's hash chain is broken: event {event} — {problem}",
    ),
    "todo.audit_broken": (
        "보안담당자에게 알리고, 백업과 저널의 체크포인트로 무엇이 바뀌었는지 확인하십시오"
        "(maildiode audit verify).",
        "Tell the security officer; find what changed from the backups and the journal's "
        "checkpoints (maildiode audit verify).",
    ),
    "dash.audit": ("감사 기록 검증", "Audit log verification"),
    "dash.audit_when": ("마지막 검증", "Last verified"),
    "dash.audit_result": ("결과", "Result"),
    "dash.audit_ok": (
        "이상 없음: 이벤트 {checked}건, 서명 체크포인트 {checkpoints}건 일치",
        "Holds: {checked} events, {checkpoints} signed checkpoints agree",
    ),
    "dash.audit_never": ("아직 검증하지 않았습니다", "Not verified yet"),
    "alarm.directory_empty": (
        "디렉터리(인사정보)가 비어 있습니다: 외부로 나가는 메일을 승인할 사람이 없습니다.",
        "The directory is empty: outbound mail has nobody to approve it.",
    ),
    "todo.directory_empty": (
        "인사정보를 가져오거나(maildiode directory import HR.csv) LDAP 동기화를 "
        "설정하십시오(maildiode directory sync).",
        "Import the HR export (maildiode directory import HR.csv) or set up the LDAP sync "
        "(maildiode directory sync).",
    ),
    "alarm.directory_unreachable": (
        "디렉터리(LDAP) 서버 {server}에 {since_s} 전부터 연결할 수 없습니다({reason}): "
        "디렉터리 비밀번호로는 로그인할 수 없고 동기화도 멈춰 있습니다.",
        "The directory (LDAP) server {server} has not answered for {since_s} ({reason}): "
        "nobody signs in with the directory password and the sync waits.",
    ),
    "alarm.directory_server_down": (
        "디렉터리(LDAP) 서버 {down}에 {since_s} 전부터 연결할 수 없습니다({reason}): "
        "{server} 서버가 대신 응답하고 있어 로그인과 동기화는 계속됩니다.",
        "The directory (LDAP) server {down} has not answered for {since_s} ({reason}): "
        "{server} answers instead; sign-in and the sync go on.",
    ),
    "todo.directory_server_down": (
        "해당 LDAP 서버(도메인 컨트롤러)와 네트워크를 확인하십시오. 남은 서버마저 멈추면 "
        "디렉터리 비밀번호로 로그인할 수 없습니다.",
        "Check that LDAP server (domain controller) and the network: should the remaining "
        "one stop too, nobody signs in with the directory password.",
    ),
    "todo.directory_unreachable": (
        "LDAP 서버와 네트워크를 확인하십시오. 콘솔 전용 계정과 자체 비밀번호가 있는 계정은 "
        "계속 로그인할 수 있고, 잘못된 비밀번호로 세지 않으므로 잠기는 사람은 없습니다.",
        "Check the LDAP server and the network. Console-only accounts and accounts with a "
        "password of their own still sign in; nobody is locked out (an outage is no wrong "
        "password).",
    ),
    "alarm.department_without_approver": (
        "승인자가 없는 부서: {departments}. 이 부서의 메일은 아무도 승인할 수 없습니다.",
        "Departments without an approver: {departments}. Their mail waits for nobody.",
    ),
    "todo.department_without_approver": (
        "부서장·대결자나 상사를 지정하거나 outbound.approval.fallback_approver를 설정하십시오.",
        "Name a head or delegate (or the people's manager), or set "
        "outbound.approval.fallback_approver.",
    ),
    "alarm.inner_disk_low": (
        "내부망 서버의 디스크 여유 공간이 {percent}% 남았습니다.",
        "The inner host has {percent}% of its disk free.",
    ),
    "todo.inner_disk_low": (
        "오래된 격리 파일을 정리하거나 디스크를 늘리십시오. 공간이 모자라면 "
        "에이전트가 메일을 받지 않습니다.",
        "Clear old quarantine files or grow the disk; short of space, the agents refuse mail.",
    ),
    "alarm.outer_disk_low": (
        "외부망 서버의 디스크 여유 공간이 {percent}% 남았습니다.",
        "The outer host has {percent}% of its disk free.",
    ),
    "todo.outer_disk_low": (
        "외부망 서버의 격리 파일을 정리하거나 디스크를 늘리십시오.",
        "Clear old quarantine files on the outer host or grow its disk.",
    ),
    "alarm.inner_memory_low": (
        "내부망 서버의 사용 가능한 메모리가 {percent}% 남았습니다.",
        "The inner host has {percent}% of its memory available.",
    ),
    "todo.inner_memory_low": (
        "내부망 서버의 다른 프로세스를 확인하거나 메모리를 늘리십시오.",
        "Check other processes on the inner host, or add memory.",
    ),
    "alarm.outer_memory_low": (
        "외부망 서버의 사용 가능한 메모리가 {percent}% 남았습니다.",
        "The outer host has {percent}% of its memory available.",
    ),
    "todo.outer_memory_low": (
        "외부망 에이전트의 변환 프로세스 수(render.processes)를 줄이거나 메모리를 늘리십시오.",
        "Lower the outer agent's render.processes, or add memory.",
    ),
}

_UNITS_S = (86400, 3600, 60, 1)
_UNIT_NAMES = {"ko": ("일", "시간", "분", "초"), "en": (" d", " h", " min", " s")}
_FINDINGS_EN = {"rrn": "resident registration number", "foreigner_id": "foreigner id",
                "driver_license": "driver's licence", "passport": "passport",
                "credit_card": "card number", "bank_account": "bank account",
                "health_insurance": "health-insurance card number",
                "passport_mrz": "passport machine-readable zone", "phone": "phone number",
                "email": "e-mail address", "secret": "password or key"}  # fmt: skip
_EN_ACTIONS = {str(a): str(a).replace("_", " ") for a in Action}


def words(language: Language) -> Mapping[str, str]:
    """Every word of the console in ``language``, with outcomes, directions, groups, actions,
    roles and finding types under ``outcome.*``, ``direction.*``, ``group.*``, ``action.*``,
    ``role.*`` and ``finding.*``."""
    pick = LANGUAGES.index(language)
    found = {key: texts[pick] for key, texts in _WORDS.items()}
    found.update({f"outcome.{k}": v[pick] for k, v in OUTCOME_LABELS.items()})
    found.update({f"direction.{k}": v[pick] for k, v in DIRECTION_LABELS.items()})
    found.update({f"group.{k}": v[pick] for k, v in GROUP_LABELS.items()})
    actions = ACTION_NAMES_KO if language == "ko" else _EN_ACTIONS
    found.update({f"action.{k}": v for k, v in actions.items()})
    found.update({f"role.{r}": ROLE_NAMES_KO[r] if language == "ko" else str(r) for r in Role})
    findings = TYPE_NAMES if language == "ko" else _FINDINGS_EN
    found.update({f"finding.{k}": v for k, v in findings.items()})
    return found


def duration(seconds: float | None, language: Language) -> str:
    """``3일 4시간``, ``12분 5초``: the two largest units (``3 d 4 h`` in English)."""
    if seconds is None:
        return "-"
    rest, shown = max(0, int(seconds)), []
    for unit, name in zip(_UNITS_S, _UNIT_NAMES[language], strict=True):
        count, rest = divmod(rest, unit)
        if count:
            shown.append(f"{count}{name}")
    return " ".join(shown[:2]) or f"0{_UNIT_NAMES[language][-1]}"


def size(value: int | None) -> str:
    """Bytes as ``1.5 GiB``, ``300 KiB``, ``12 B``."""
    if value is None:
        return "-"
    amount, unit = float(value), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            break
        amount /= 1024
    return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
