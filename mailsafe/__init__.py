"""What both agents do to a mail.

Hostile-MIME parsing, rendering to pixels, personal-data detection and masking, policy.
"""
