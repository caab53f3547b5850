"""What both agents do to a mail: hostile-MIME parsing, rendering to pixels, personal-data detection."""
