"""The console's policy editor (issue 20.1): the outbound and inbound rules files edited from
the web listener by an administrator or a security officer (docs/console.md, "Rules").

    tomltext.py   a rules document written back as TOML (pure)
    ruleform.py   one rule as the edit form shows it, and back; every field's problem (pure)
    edits.py      add, replace, enable, move a rule in a document; validate (pure)
    versions.py   the versions of each file (who, when, what), their diff (pure) and store
    dryrun.py     a draft rule tried on a pasted text or an uploaded mail (pure)
    files.py      where the rules live, reading and saving them (the durable write), audited
    pages.py      the pages (Jinja2, no script)

The files stay the source of truth: the agents read them as before, and the inner agent
reads the outbound file again when it changes (``inner_agent.outbound.rulesource``), the
inbound one goes out as the signed policy record (``inner_agent.inbound.policy``).
"""
