"""The inner agent's web listener, the parts every set of pages shares: sign-in, sessions,
CSRF, security headers, and the bounds that keep a flood of sign-ins from hurting the mail
path (docs/approval.md "Sign-in"; the D-record "One sign-in module for the web listener").

The approval pages (``inner_agent.outbound.web``) are one set of pages on top; the console
(``inner_agent.console``) is another. Nothing here knows about approvals: accounts come in through
``signin.Accounts`` (today the HR directory with local argon2 hashes, later LDAP).
"""
