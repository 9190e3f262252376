"""Where journeys may send traffic: the agent's egress policy (``--allow-hosts``, ``--deny-hosts``).

Journeys are written by product owners; the network the agent sits in is not theirs. A
rule is a CIDR (``10.0.0.0/8``, ``fd00::/8``), an address (``192.0.2.7``), a host name
(``shop.example.com``) or a host pattern (``*.example.com``: any name below it, not the
name itself). A destination is checked by its host name and by every address the name
resolves to, before any connection is made, in this order:

1. ``--deny-hosts``: a matching rule refuses it;
2. the default deny: link-local addresses (``169.254.0.0/16``, ``fe80::/10``, where the
   cloud metadata services answer: ``169.254.169.254`` serves a node's credentials) and
   AWS's IPv6 metadata address ``fd00:ec2::254`` are refused unless an allow rule names
   them explicitly (a CIDR or address inside them, or the exact host name); a broad
   rule such as ``0.0.0.0/0`` does not;
3. ``--allow-hosts``: when any is given, only what one of them matches is allowed.

A refusal is a :class:`EgressRefused` whose message names the rule, e.g. ``egress to
169.254.169.254 refused by the default deny of link-local addresses (--allow-hosts
169.254.169.254 to allow)``; the step kinds report it as reason ``config``. A name that
resolves to allowed and refused addresses alike is connected to the allowed ones only.
IPv4-mapped IPv6 addresses (``::ffff:169.254.169.254``) are checked as the IPv4 address.

Names are looked up with the event loop's ``getaddrinfo`` unless a resolver is given (tests
map names); an IP literal is its own answer, with no lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

__all__ = ["DEFAULT_DENY", "EgressPolicy", "EgressRefused", "Resolver", "Rule"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_DENY: tuple[tuple[str, str], ...] = (
    ("169.254.0.0/16", "link-local addresses"),
    ("fe80::/10", "link-local addresses"),
    ("fd00:ec2::254/128", "the cloud metadata address fd00:ec2::254"),
)
_DEFAULT_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in DEFAULT_DENY)
_VERDICTS = 4096  # (host, address) pairs remembered by a policy
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")


class EgressRefused(Exception):
    """A destination the policy refuses; the message names the rule."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``--allow-hosts`` / ``--deny-hosts`` entry, as written and as parsed."""

    text: str
    network: Network | None = None
    host: str | None = None  # lower case, no trailing dot; may start with "*."

    @classmethod
    def parse(cls, text: str) -> Rule:
        """``text`` as a rule; ValueError says what a rule may be."""
        written = text.strip()
        try:
            return cls(written, network=ipaddress.ip_network(written, strict=False))
        except ValueError:
            pass
        host = written.lower().rstrip(".")
        if not _HOST.match(host):
            raise ValueError(
                f"{written!r} is not a CIDR (10.0.0.0/8), an address, a host name or a host "
                "pattern (*.example.com)"
            )
        return cls(written, host=host)

    def matches(self, host: str, address: Address | None) -> bool:
        if self.network is not None:
            return address is not None and address in self.network
        assert self.host is not None
        if self.host.startswith("*."):
            return fnmatchcase(host, self.host)
        return host == self.host

    def names(self, network: Network, host: str, address: Address) -> bool:
        """Whether this rule allows ``address`` explicitly inside the default-denied
        ``network``: a CIDR within it, or the exact host name."""
        if self.network is not None:
            return (
                self.network.version == network.version
                and self.network.subnet_of(network)  # type: ignore[arg-type]
                and address in self.network
            )
        return self.host == host


@dataclass(frozen=True)
class EgressPolicy:
    """The agent's egress rules; the default refuses link-local and metadata addresses only."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    resolver: Resolver | None = field(default=None, compare=False)
    # verdicts by (host, address): the rules never change, and parsing the address and
    # matching it took ~5% of an HTTP step's CPU; cleared when full (a name may resolve
    # to ever new addresses)
    _verdicts: dict[tuple[str, str | None], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def parse(
        cls, allow: Iterable[str] = (), deny: Iterable[str] = (), resolver: Resolver | None = None
    ) -> EgressPolicy:
        """From the flags' texts (each may hold several rules separated by commas)."""
        return cls(_rules(allow, "--allow-hosts"), _rules(deny, "--deny-hosts"), resolver)

    def refusal(self, host: str, address: str | None) -> str | None:
        """Why egress to ``host`` (at ``address``, None before resolution) is refused, or
        None when it is allowed. Without an address, only what the name decides."""
        key = (host, address)
        if key in self._verdicts:
            return self._verdicts[key]
        if len(self._verdicts) >= _VERDICTS:
            self._verdicts.clear()
        why = self._verdicts[key] = self._decide(host, address)
        return why

    def _decide(self, host: str, address: str | None) -> str | None:
        name = host.lower().rstrip(".").strip("[]")
        ip = _address(address if address is not None else name)
        where = name if ip is None or str(ip) == name else f"{name} ({ip})"
        for rule in self.deny:
            if rule.matches(name, ip):
                return f"egress to {where} refused by --deny-hosts {rule.text}"
        if ip is not None:
            for network, why in _DEFAULT_NETWORKS:
                if ip in network and not any(r.names(network, name, ip) for r in self.allow):
                    return (
                        f"egress to {where} refused by the default deny of {why} "
                        f"(--allow-hosts {ip} to allow)"
                    )
        if self.allow and (ip is not None or address is None):
            if any(rule.matches(name, ip) for rule in self.allow):
                return None
            if ip is None and any(rule.network is not None for rule in self.allow):
                return None  # an address rule may still allow it, once resolved
            allowed = ", ".join(rule.text for rule in self.allow)
            return f"egress to {where} refused: not in --allow-hosts ({allowed})"
        return None

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` that egress may reach, in the resolver's order.
        Raises EgressRefused when there is none (naming the first refusal's rule), and the
        resolver's ``socket.gaierror`` when the name does not resolve."""
        why = self.refusal(host, None)
        if why is not None:
            raise EgressRefused(why)
        found = await self._resolve(host.strip("[]"), port)
        allowed: list[str] = []
        refused: list[str] = []
        for address in found:
            why = self.refusal(host, address)
            (refused if why else allowed).append(why or address)
        if not allowed:
            raise EgressRefused(refused[0] if refused else f"{host} resolved to no address")
        return allowed

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:  # an address is its own answer: no lookup in the loop's thread pool
            return [ipaddress.ip_address(host).compressed]
        except ValueError:
            pass
        if self.resolver is not None:
            return list(dict.fromkeys(await self.resolver(host, port)))
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _rules(texts: Iterable[str], flag: str) -> tuple[Rule, ...]:
    rules = []
    for text in texts:
        for part in text.split(","):
            if part.strip():
                try:
                    rules.append(Rule.parse(part))
                except ValueError as error:
                    raise ValueError(f"{flag}: {error}") from None
    return tuple(rules)


def _address(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%eth0: the scope goes
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
