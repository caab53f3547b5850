"""The console's data: a mail index over the audit log, its queries and its exports.

    fold.py     one row per mail and direction, folded from its audit events (pure)
    query.py    the questions: MailQuery (filters, pages), StatsQuery (periods, groups) (pure)
    periods.py  times in the site's zone, ISO 8601, day/month/year periods (pure)
    store.py    the index in SQLite beside the audit log: catch-up, search, detail, statistics
    export.py   search results and statistics as XLSX and CSV, Korean or English headers
    errors.py   what the index refuses

docs/console-data.md describes the rows, the outcome table and the JSON shapes. (The fold
function is not re-exported here: ``agentkit.mailindex.fold`` names its module.)
"""

from agentkit.mailindex.errors import AmbiguousMail, MailIndexError, QueryRefused
from agentkit.mailindex.fold import DIRECTIONS, OUTCOMES, MailRow, mail_key, outcome_of
from agentkit.mailindex.periods import PERIODS, SITE_ZONE, iso_time, zone_named
from agentkit.mailindex.query import GROUPS, MailQuery, StatsQuery
from agentkit.mailindex.store import IndexFollower, MailIndex, index_path_for

__all__ = [
    "DIRECTIONS",
    "GROUPS",
    "OUTCOMES",
    "PERIODS",
    "SITE_ZONE",
    "AmbiguousMail",
    "IndexFollower",
    "MailIndex",
    "MailIndexError",
    "MailQuery",
    "MailRow",
    "QueryRefused",
    "StatsQuery",
    "index_path_for",
    "iso_time",
    "mail_key",
    "outcome_of",
    "zone_named",
]
