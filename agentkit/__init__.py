"""What both agents stand on: configuration, the audit trail, logs, start-up, and the link ends.

The kernel of the two agents. It sits above ``protocol`` and ``mailsafe`` and below
``outer_agent`` and ``inner_agent``, which import it and never each other; it imports no agent
and nothing of the command line (``tests/test_layering.py`` enforces every arrow).
"""
