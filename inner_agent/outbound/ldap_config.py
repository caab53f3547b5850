"""``[directory]`` and ``[directory.ldap]`` of ``inner.toml``: where the directory comes from
when it is not (only) an HR export — an LDAP server or Active Directory, synced on a schedule.

Every key is in docs/configuration.md and deploy/examples/inner.toml. The bind password is
read from a file (never from the config itself), once per pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import Section, resolve_path

__all__ = [
    "AD_DISABLED_BIT",
    "MAX_LDAP_SERVERS",
    "DirectorySection",
    "LdapAttributes",
    "LdapSection",
    "servers_text",
]

# userAccountControl's ACCOUNTDISABLE flag (Microsoft: "The user account is disabled").
AD_DISABLED_BIT = 0x2
# A sync more often than this is load on the LDAP server with nothing to gain (HR changes
# are daily events); a test may go faster with a pass by hand (`maildiode directory sync`).
MIN_INTERVAL_S = 60.0
# A site's domain controllers for one directory: two or three. Each dead one costs a sign-in
# signin_timeout_s once per signin_pause_s, so a long list of dead servers would add up.
MAX_LDAP_SERVERS = 8


class LdapAttributes(Section):
    """Which LDAP attribute holds each directory field ("" where none does)."""

    email: str = "mail"
    name: str = "displayName"  # falls back to cn when the entry has none
    # "": the entry's place in the tree: its nearest ou= is the department, the next ou= up
    # that department's parent (상위부서), and so on. Else an attribute with the name (AD's
    # "department"; no parent then).
    department: str = ""
    rank: str = "title"  # 직급
    manager: str = "manager"  # a DN; the person it names approves this person's mail
    role: str = ""  # an attribute holding 부서장 / head, 대결자 / delegate, ... ("": none)
    groups: str = ""  # an attribute of group DNs (AD/OpenLDAP "memberOf"): their cn is the name


class LdapSection(Section):
    # ldap://host:389 or ldaps://host:636; or a list of them (a site's domain controllers),
    # asked in this order: the next one when one cannot answer (D92). Read as a tuple.
    url: tuple[str, ...]
    base_dn: str  # where the people are searched (subtree)
    bind_dn: str = ""  # "": an anonymous bind
    bind_password_file: Path | None = None  # the bind DN's password, one line
    # ldaps:// certificates are verified against the system's CAs, or this file's (PEM).
    ca_file: Path | None = None
    flavor: Literal["openldap", "active-directory"] = "openldap"
    # Which entries are people ("": by flavor, see people_filter).
    user_filter: str = ""
    # An LDAP filter matching the disabled accounts among them. Active Directory: the
    # userAccountControl bit is read by default; OpenLDAP has no standard flag, so a site says
    # its own ("(pwdAccountLockedTime=*)" with the ppolicy overlay, "(employeeType=퇴직)"...).
    disabled_filter: str = ""
    interval_s: float = Field(default=3600.0, ge=MIN_INTERVAL_S, le=7 * 86400)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Signing in waits on the server: a dead one must cost a person seconds, not a worker
    # minutes (connect, and each answer; answers are waited for in whole seconds).
    signin_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # After the server could not be reached at sign-in, sign-ins do not ask it again for this
    # long: they are told at once that the directory is unreachable (0: ask every time).
    signin_pause_s: float = Field(default=15.0, ge=0, le=600)
    attributes: LdapAttributes = LdapAttributes()

    @field_validator("bind_password_file", "ca_file", mode="before")
    @classmethod
    def _password_file(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else resolve_path(value, info)

    @field_validator("url", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value  # the old form: one URL

    @field_validator("url")
    @classmethod
    def _url(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("names no server: give one ldap:// or ldaps:// URL, or a list")
        if len(value) > MAX_LDAP_SERVERS:
            raise ValueError(f"names {len(value)} servers; at most {MAX_LDAP_SERVERS}")
        for url in value:
            if not url.startswith(("ldap://", "ldaps://")) or any(c.isspace() for c in url):
                raise ValueError(f"{url!r} must be an ldap:// or ldaps:// URL")
        if len(set(value)) != len(value):
            raise ValueError("names a server twice")
        return value

    @field_validator("user_filter", "disabled_filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        if value and not (value.startswith("(") and value.endswith(")")):
            raise ValueError(f"{value!r} is not an LDAP filter: it must be in parentheses")
        return value

    def people_filter(self) -> str:
        """The filter that finds the people: the configured one, else the flavor's."""
        if self.user_filter:
            return self.user_filter
        if self.flavor == "active-directory":
            return "(&(objectCategory=person)(objectClass=user))"
        return "(objectClass=inetOrgPerson)"

    @model_validator(mode="after")
    def _password_with_dn(self) -> LdapSection:
        if self.bind_dn and self.bind_password_file is None:
            raise ValueError("bind_dn needs bind_password_file (the password is kept in a file)")
        return self


def servers_text(section: LdapSection) -> str:
    """The configured servers as the log and the status say them: "ldaps://dc1, ldaps://dc2"."""
    return ", ".join(section.url)


class DirectorySection(Section):
    """Where the directory comes from besides ``maildiode directory import``."""

    ldap: LdapSection | None = None  # absent: no sync


def example_toml_section() -> str:
    """The ``[directory.ldap]`` part of an example ``inner.toml``: every key, commented out."""
    return _EXAMPLE


_EXAMPLE = """\
# The directory from LDAP / Active Directory (docs/operations.md, "The directory"): synced every
# interval_s by the agent, and by hand with `maildiode directory sync -c inner.toml`. While it
# is set, LDAP is the source of truth: a person it no longer returns leaves the directory.
# [directory.ldap]
# url = "ldaps://dc1.corp.example:636"        # ldap:// or ldaps://; or several, asked in
#                                            # order (the next when one cannot answer):
#                                            # ["ldaps://dc1.corp.example:636",
#                                            #  "ldaps://dc2.corp.example:636"]
# base_dn = "ou=People,dc=corp,dc=example"   # people are searched below it (subtree)
# bind_dn = "cn=maildiode,ou=Services,dc=corp,dc=example"   # "" or absent: anonymous bind
# bind_password_file = "keys/ldap.password"  # one line; needed with bind_dn
# ca_file = "keys/corp-ca.pem"               # ldaps:// verified against it (absent: system CAs)
# flavor = "openldap"                        # or "active-directory" (userAccountControl)
# user_filter = ""                           # "": by flavor ((objectClass=inetOrgPerson))
# disabled_filter = ""                       # e.g. "(pwdAccountLockedTime=*)" (OpenLDAP)
# interval_s = 3600                          # between passes (>= 60)
# timeout_s = 10                             # connect and each answer (the sync)
# signin_timeout_s = 3                       # the same while someone signs in
# signin_pause_s = 15                        # after the server failed a sign-in, not asked
#                                            # again for this long (0: every time)
# [directory.ldap.attributes]
# email = "mail"
# name = "displayName"                       # cn when absent
# department = ""                            # "": the entry's ou= path (상위부서 from the tree)
# rank = "title"                             # 직급
# manager = "manager"                        # a DN: that person approves this one's mail
# role = ""                                  # e.g. "employeeType" holding 부서장, 대결자, ...
# groups = ""                                # e.g. "memberOf" (group DNs; their cn is the name)
"""
