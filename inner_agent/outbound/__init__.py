"""The outbound path of the inner agent: intake, scan, policy, approval, out link.

internal server --SMTP--> smtp (spool, fsync, 250) --> service: scan + decide
    allow / monitor --> publish on stream "outbound" (the original bytes)
    block           --> notice to the sender
    approve         --> approval request to the department head --> web --> publish
"""
