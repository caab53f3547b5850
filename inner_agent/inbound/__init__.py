"""Receive filters, the intranet's half (issue 17): the inbound rules published outward as a
signed policy, held inbound mail shown to its approvers, and their decisions sent outward.

- ``config``: ``[inbound]`` of inner.toml;
- ``policy``: ``PolicyPublisher``, the rules file with its departments and groups resolved from
  the directory, versions kept durably, a ``policy`` record on the out link when it changed;
- ``holds``: ``HoldBook``, the held mails the outer agent told us of, and the decisions;
- ``approvers``: who decides (the recipients' department heads, or the security officers);
- ``arrivals``: a held mail's preview from the link, recorded and sent to its approvers;
- ``outward``: each pass of the outbound worker checks the policy and publishes decisions.
"""
