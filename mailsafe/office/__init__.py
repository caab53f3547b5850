"""Office and Hangul documents turned into PDF or text, for the renderer to draw as pages.

- :mod:`mailsafe.office.formats` tells, from the name, the declared type and the first bytes,
  which kind of document an attachment is (pure).
- :mod:`mailsafe.office.converter` is the seam "document bytes -> PDF bytes, or a named
  refusal": :class:`~mailsafe.office.converter.OfficeConverter` drives a warm LibreOffice in
  a sandbox child (:mod:`mailsafe.office.sandbox`, :mod:`mailsafe.office.sandbox_child`).
- :mod:`mailsafe.office.hangul` reads HWP 5 and HWPX text in-process (LibreOffice 7.4 opens
  neither; docs/decisions.md, "HWP and HWPX as text pages").
"""
