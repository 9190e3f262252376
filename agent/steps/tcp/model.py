"""The TCP step as written in YAML: where to connect, what to send, how much of the reply
to read, and what the reply must hold."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from agent.language.fields import ByteSize, Duration, StrictModel, error_at
from agent.steps.kind import CERT_EXPIRY, Aggregate, Measure, StepBase, StepKind

__all__ = ["KIND", "TcpExchange", "TcpExpect", "TcpExtract", "TcpRead", "TcpStep", "parse_address"]

_ADDRESS = re.compile(r"^(?:\[(?P<ipv6>[^\]\s]+)\]|(?P<host>[^\s:/\[\]]+)):(?P<port>[^:]*)$")
_REFERENCE = re.compile(r"\$\{[^}]*\}")


def parse_address(text: str, written: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as ``(host, port)``; ValueError saying what is wrong
    (quoting ``written``, the address as the file has it, when ``text`` is derived from it)."""
    match = _ADDRESS.match(text)
    if match is None:
        raise ValueError(
            "must be HOST:PORT, such as edi.example.com:7000 or [2001:db8::1]:7000, got "
            f"{written or text!r}"
        )
    port = match["port"]
    if not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"must have a port from 1 to 65535, got {port!r}")
    return match["ipv6"] or match["host"], int(port)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]
"""A regular expression, checked when the file is loaded."""


class TcpRead(StrictModel):
    """Where the reply ends: exactly one of ``until``, ``bytes`` or ``until_close``."""

    until: str | None = Field(
        default=None, min_length=1, description='Read up to and including this text, e.g. "\\n"'
    )
    length: ByteSize | None = Field(
        default=None, alias="bytes", description="Read exactly this many bytes"
    )
    until_close: bool = Field(default=False, description="Read until the peer closes")
    max_bytes: ByteSize = Field(
        default=64_000, description="Read at most this much (e.g. 64KB); more fails the step"
    )

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_end(self) -> TcpRead:
        ends = [self.until is not None, self.length is not None, self.until_close]
        if sum(ends) != 1:
            raise ValueError("give exactly one of until, bytes or until_close: true")
        if self.length is not None and self.length > self.max_bytes:
            raise error_at(
                f"must not exceed max_bytes ({self.max_bytes}), got {self.length}", "bytes"
            )
        return self


class TcpExchange(StrictModel):
    """Connect (and make a TLS handshake), then send ``send``, then read the reply."""

    connect: str = Field(description="HOST:PORT or [IPv6]:PORT, e.g. edi.example.com:7000")
    tls: bool = Field(default=False, description="Make a TLS handshake once connected")
    verify: bool | str = Field(
        default=True,
        description="With tls: verify the certificate: true, false, or a CA bundle path",
    )
    send: str | None = Field(
        default=None, min_length=1, description="Text written once connected, as UTF-8"
    )
    read: TcpRead | None = Field(default=None, description="Read a reply; without it, none is")

    @field_validator("connect")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        # ${...} parts are rendered when the step runs; "1" stands for them here
        if _REFERENCE.fullmatch(value) is None:
            parse_address(_REFERENCE.sub("1", value), value)
        return value

    @model_validator(mode="after")
    def _verify_needs_tls(self) -> TcpExchange:
        if "verify" in self.model_fields_set and not self.tls:
            raise error_at("applies to TLS only: add tls: true", "verify")
        return self


class TcpExpect(StrictModel):
    """What the reply must hold; every failure reports expected vs actual."""

    contains: str | list[str] | None = Field(
        default=None, description="The reply contains this text (or each text of a list)"
    )
    not_contains: str | list[str] | None = Field(
        default=None, description="The reply contains none of these texts"
    )
    matches: Regex | None = Field(default=None, description="A regular expression (search)")
    max_duration: Duration | None = None

    def checks_reply(self) -> bool:
        return any(v is not None for v in (self.contains, self.not_contains, self.matches))


class TcpExtract(StrictModel):
    """A value taken from the reply: the regex's group 1, or its whole match."""

    regex: Regex
    secret: bool = Field(default=False, description="Mask the extracted value in every output")


class TcpStep(StepBase):
    """A TCP exchange made with asyncio streams, its expectations and extractions."""

    kind_name = "tcp"

    tcp: TcpExchange
    expect: TcpExpect = Field(default_factory=TcpExpect)
    extract: dict[str, TcpExtract] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reply_is_read(self) -> TcpStep:
        if self.tcp.read is None:
            for key, wanted in (("expect", self.expect.checks_reply()), ("extract", self.extract)):
                if wanted:
                    raise error_at("needs a reply: add tcp.read (until, bytes or until_close)", key)
        return self

    def provides(self) -> frozenset[str]:
        return frozenset(self.extract)


KIND = StepKind(
    model=TcpStep,
    run="agent.steps.tcp.run:run",
    measures=(
        # Seconds per phase, successful steps only, as for HTTP: one sample per phase.
        Measure("phases", "journey_tcp_phase_seconds_total",
                "Seconds spent in each phase of successful TCP steps", Aggregate.SUM,
                label="phase", only_ok=True),
        CERT_EXPIRY,
    ),
)  # fmt: skip
