"""``python -m inner_agent.webproc``: the web process (``child.main``); the agent starts it."""

from inner_agent.webproc.child import main

raise SystemExit(main())
