"""Sender-specified routing in a mail address: the local part naming another destination.

``victim%gmail.com@corp.example`` (the percent hack), ``gmail.com!victim@corp.example`` (a UUCP
bang path) and ``"victim@gmail.com"@corp.example`` (an address inside a quoted local part) all
end in one of our domains, yet an internal server with Postfix's defaults
(``allow_percent_hack``, ``swap_bangpath``) rewrites the first two into ``victim@gmail.com``
and relays them onwards. A notification injected for such a recipient would leave for the
internet. No mailbox of ours needs these characters, so both agents refuse them: the outer
agent at RCPT, the inner agent when it reads the recipients of a bundle.

Pure: strings in, a finding out.
"""

from __future__ import annotations

__all__ = ["ROUTING_CHARACTERS", "routing_in_local_part"]

# Characters that make a local part route elsewhere: "%" (percent hack, RFC 1123 §5.2.16),
# "!" (UUCP bang path, RFC 976) and "@" (only possible quoted, or in a malformed address).
ROUTING_CHARACTERS = "%!@"


def routing_in_local_part(address: str) -> str | None:
    """The first routing character in ``address``'s local part, or None when there is none.

    The local part is everything before the last ``@`` (quotes included), which is what an MTA
    strips when the domain is its own.
    """
    local = address.rpartition("@")[0]
    return next((c for c in local if c in ROUTING_CHARACTERS), None)
