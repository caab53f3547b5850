"""The console (issue 16): one place in the intranet to see both zones — a dashboard, mail
search and detail, statistics, access records — and its API, on the inner agent's web
listener beside the approval pages (docs/console.md).

    places.py   where the console reads: the agent's files, from inner.toml (frozen)
    figures.py  the agent's state read without disturbing it: link, queues, approvals, findings
    status.py   the dashboard's figures and alarms as one JSON-able answer (pure)
    scope.py    which mails each console role may see (pure)
    charts.py   bar charts drawn from data as SVG geometry (pure)
    text.py     the console's words in Korean and English
    data.py     the one object pages and API ask: the mail index, figures, host sampling
    pages.py    the server-rendered pages (Jinja2, no scripts)
    api.py      GET /api/v1/status, /mail, /mail/{id}, /stats
    exports.py  XLSX and CSV downloads of searches, statistics and access records

Every route declares its roles (``inner_agent.web.roles.require``); the listener's app
(``inner_agent.web.app.listener_app``) puts the console's routes on it.
"""
