"""Which hosts a server-side request may reach: the guard against requests to private networks
(SSRF) through a URL that a user typed or that a remote server sent us.

A URL is allowed when its scheme is https (plain http only to private hosts, and only when an
administrator allows private hosts) and **every** address its host resolves to is globally
routable. Literal IPs are read the way the C library reads them (``2130706433``, ``0177.0.0.1``,
``0x7f.1``, ``127.1``), IPv6 with its embedded IPv4 forms (mapped, compatible, 6to4, NAT64,
Teredo). ``check`` returns the address to connect to: callers connect to that one, never to a
second resolution of the name (DNS rebinding).

``allow_private`` (an administrator's setting) opens loopback, private
(RFC 1918, ULA) and shared (100.64/10) addresses for an on-premises server and for the tests;
link-local (the cloud metadata service at 169.254.169.254), multicast, broadcast, unspecified
and reserved addresses stay refused.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

#: why a URL was refused (``HostNotAllowed.reason``)
PRIVATE = "private"  # resolves to an address that is not globally routable
SCHEME = "scheme"  # not https (plain http: private hosts only, with the parameter)
MALFORMED = "malformed"  # no host, or a number that is not an IPv4 address
UNRESOLVED = "unresolved"  # the name does not resolve

DEFAULT_PORTS = {"http": 80, "https": 443}
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class HostNotAllowed(Exception):
    """A URL the guard refuses; ``reason`` is one of the constants above."""

    def __init__(self, reason, url=""):
        super().__init__(f"{reason}: {url}")
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address``; ``host`` stays the TLS and Host-header name."""

    scheme: str
    host: str
    port: int
    address: str


def parse_ipv4(host):
    """The IPv4 address of a numeric host in any inet_aton notation, None for a name.

    Raises HostNotAllowed for a host that ends in a number but is no address (the WHATWG URL
    rule: such a host is never sent to DNS)."""
    labels = host.split(".")
    if not _NUMBER.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.match(label) for label in labels):
        raise HostNotAllowed(MALFORMED, host)
    values = []
    for label in labels:
        if label[:2].lower() == "0x":
            values.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise HostNotAllowed(MALFORMED, host)
            values.append(int(label, 8))
        else:
            values.append(int(label))
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (5 - len(values)):
        raise HostNotAllowed(MALFORMED, host)
    number = last
    for index, value in enumerate(head):
        number += value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def literal_address(host):
    """The address a literal host names (IPv4 in any notation, IPv6 without its zone), or None."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise HostNotAllowed(MALFORMED, host) from None
    return parse_ipv4(host)


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64, Teredo), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in _NAT64) or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _always_refused(address):
    return (
        address.is_unspecified or address.is_multicast or address.is_link_local or address.is_reserved
        or (address.version == 4 and address in _THIS_NETWORK)
        or (address.version == 6 and address.is_site_local)
    )


def _single_address_allowed(address, allow_private):
    if address.is_loopback:  # before the reserved ranges: IPv6's ::/8 holds ::1
        return allow_private
    if _always_refused(address):
        return False
    if address.is_global and not (address.version == 4 and address in _SHARED):
        return True
    return allow_private and (address.is_loopback or address.is_private or (address.version == 4 and address in _SHARED))


def address_allowed(address, allow_private=False):
    """Whether a request may go to ``address`` (an ``ipaddress`` object): it and any IPv4
    address it embeds must both be allowed (a mapped or compatible one is that IPv4 address)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        if not _single_address_allowed(embedded, allow_private):
            return False
        if address.ipv4_mapped or address in _IPV4_COMPATIBLE:
            return True
    return _single_address_allowed(address, allow_private)


def _is_localhost(host):
    return host == "localhost" or host.endswith(".localhost")


def system_resolver(host, port):
    """Every address ``host`` resolves to (``socket.getaddrinfo``), as strings."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class Guard:
    """Checks URLs against the rules above. ``resolver(host, port)`` returns address strings
    (tests give a stub; the default asks the system)."""

    def __init__(self, allow_private=False, resolver=None):
        self.allow_private = bool(allow_private)
        self.resolver = resolver or system_resolver

    def check(self, url):
        """The Target to connect to for ``url``; HostNotAllowed when it may not be reached."""
        try:
            parts = urlsplit(url or "")
            port = parts.port
        except ValueError:
            raise HostNotAllowed(MALFORMED, url) from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        if scheme not in DEFAULT_PORTS:
            raise HostNotAllowed(SCHEME, url)
        if not host:
            raise HostNotAllowed(MALFORMED, url)
        port = port or DEFAULT_PORTS[scheme]
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        elif _is_localhost(host) and not self.allow_private:
            raise HostNotAllowed(PRIVATE, url)
        elif scheme == "http" and not self.allow_private:
            raise HostNotAllowed(SCHEME, url)  # refused whatever the name resolves to: no lookup
        else:
            addresses = self._resolve(host, port, url)
        if not all(address_allowed(address, self.allow_private) for address in addresses):
            raise HostNotAllowed(PRIVATE, url)
        if scheme == "http" and (not self.allow_private or any(address_allowed(address) for address in addresses)):
            # A password in clear text never crosses the internet: http only inside the network.
            raise HostNotAllowed(SCHEME, url)
        return Target(scheme, host, port, str(addresses[0]))

    def _resolve(self, host, port, url):
        try:
            found = self.resolver(host, port)
        except (OSError, UnicodeError):
            found = []
        addresses = []
        for text in found:
            try:
                addresses.append(ipaddress.ip_address(str(text).split("%", 1)[0]))
            except ValueError:
                raise HostNotAllowed(MALFORMED, url) from None
        if not addresses:
            raise HostNotAllowed(UNRESOLVED, url)
        return addresses
