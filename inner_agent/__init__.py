"""Intranet-side agent: link intake, notifications, injection; outbound intake, policy, approval."""
