"""Internet-side agent: SMTP intake, spool, rendering pipeline, publishing.

Also delivers approved outbound mail that arrives over the reverse link.
"""
