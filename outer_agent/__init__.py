"""Internet-side agent: SMTP intake, spool, rendering pipeline, publishing; delivery of approved outbound mail."""
