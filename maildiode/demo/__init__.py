"""``maildiode demo``: both agents, a carrier each way and an embedded mailbox on loopback."""
