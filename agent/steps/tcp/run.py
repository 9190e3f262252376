"""Runs a TCP step with asyncio streams: connect (and TLS), send, read the reply up to its
end or its cap, time it from the socket events, then check ``expect`` and run ``extract``.

OS and TLS errors become failure reasons here, and only here, by the phase they
happened in::

    socket.gaierror                          -> dns
    OSError while connecting                 -> connect (refused, unreachable)
    OSError (ssl.SSLError too) in handshake  -> tls
    ssl.SSLError while sending or reading    -> tls
    OSError while sending or reading         -> connect (reset)
    the peer closed before the reply ended   -> protocol
    the reply ran past read.max_bytes        -> too_large
    the step's deadline                      -> timeout (the runner cancels the step)
    an address the egress policy refuses     -> config (before any connection)
    a verify: CA bundle outside --ca-dir     -> config

Measurements land on ``ctx.record`` in a ``finally``, so a failed step keeps them. The
connection is closed however the step ends: politely within a second, at once when that
fails or when the step is cancelled. The name is resolved here, each address checked
against the egress policy, and only an allowed address is connected to. Regular
expressions run within a time bound (:mod:`agent.run.patterns`); replies quoted in
messages are masked before they are cut.
"""

from __future__ import annotations

import socket
import ssl

from agent.run.context import MASK_WINDOW, Mask, StepContext, StepFailed, ca_bundle, masked_cut
from agent.run.egress import EgressPolicy, EgressRefused
from agent.run.patterns import PatternTooSlow, search
from agent.run.results import FailureReason
from agent.run.tls import TlsConfigError, certificate_expiry
from agent.run.wire import Wire, WireClock, listening, open_wire
from agent.steps.kind import Unit
from agent.steps.tcp.model import TcpExpect, TcpExtract, TcpRead, TcpStep, parse_address

__all__ = ["PHASES", "run"]

# phase -> (event that starts it, event that ends it); connect is the kernel's measure.
# With a read they add up to the duration (first_byte holds the send).
_SPANS = {
    "tls": ("tls", "secured"),
    "first_byte": ("ready", "first_byte"),
    "read": ("first_byte", "end"),
}
PHASES = ("connect", *_SPANS)
_CHUNK = 65_536
_SHOWN_CHARS = 200
_CONTEXT_CHARS = 60  # shown either side of an unwanted text that was found


async def run(step: TcpStep, ctx: StepContext) -> None:
    spec, render = step.tcp, ctx.template.render
    address = render(spec.connect)
    try:
        host, port = parse_address(address)
    except ValueError as error:
        raise StepFailed(FailureReason.CONFIG, f"connect: {error}") from None
    tls = None
    if spec.tls:
        try:
            tls = ctx.env.tls.get(ca_bundle(render(spec.verify), ctx.env), user="tcp")
        except TlsConfigError as error:
            raise StepFailed(FailureReason.CONFIG, str(error)) from None
    payload = render(spec.send).encode() if spec.send is not None else b""
    until = render(spec.read.until).encode() if spec.read and spec.read.until else None
    timer = _Timer(address, ctx.masker)
    try:
        data = await _exchange(host, port, tls, payload, spec.read, until, timer, ctx.env.egress)
    finally:
        timer.record(ctx)
    reply = _text(data)
    await _check(step.expect, reply, ctx)
    await _extract(step.extract, reply, ctx)


class _Timer(WireClock):
    """The moments of one exchange on the wire, and the phase it is in."""

    def __init__(self, where: str, mask: Mask) -> None:
        super().__init__(_SPANS)
        self.where = where  # HOST:PORT as written, for messages
        self.mask = mask  # the run's masker, for replies quoted in messages
        self.phase = "connect"
        self.cert_expiry: float | None = None  # after a TLS handshake

    def record(self, ctx: StepContext) -> None:
        """Phases, the certificate's expiry and, for an exchange that ended (not one cut
        off by an error or the deadline), its duration: connect and TLS, then from the
        send to the last event (the gaps between them are the agent's, not counted)."""
        phases = self.phases()
        for phase, seconds in phases.items():
            ctx.record.set("phases", phase, seconds, Unit.SECONDS)
        if self.cert_expiry is not None:
            ctx.record.set("cert_expiry", "", self.cert_expiry, Unit.TIMESTAMP)
        if "end" in self.marks and "ready" in self.marks:
            exchange = max(0.0, self.marks["end"] - self.marks["ready"])
            ctx.record.duration = phases.get("connect", 0.0) + phases.get("tls", 0.0) + exchange


async def _exchange(
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    payload: bytes,
    read: TcpRead | None,
    until: bytes | None,
    timer: _Timer,
    egress: EgressPolicy,
) -> bytes:
    """Connect, secure, send, read: the reply (empty when ``read`` is None)."""
    try:
        wire = await _connect(host, port, egress)
    except EgressRefused as refused:
        raise StepFailed(FailureReason.CONFIG, refused.message) from None
    except OSError as error:
        raise _failure(error, timer, host) from None
    try:
        with listening(timer):
            timer.connect = wire.connect_seconds
            if tls is not None:
                timer.phase = "tls"
                timer.mark("tls")
                await wire.start_tls(tls, server_hostname=host)
                timer.mark_arrival("secured")
                assert wire.tls is not None
                timer.cert_expiry = certificate_expiry(wire.tls)
            timer.phase = "send"
            timer.mark("ready")
            if payload:
                await wire.send(payload)
            timer.phase = "read"
            if read is None:
                timer.mark("end")
                return b""
            data = await _read(wire, read, until, timer)
            timer.mark_arrival("end")
            return data
    except OSError as error:  # ssl.SSLError is one
        raise _failure(error, timer, host) from None
    finally:
        wire.close()


async def _connect(host: str, port: int, egress: EgressPolicy) -> Wire:
    """A connection to the first allowed address of ``host`` that answers (the name is
    resolved once, here: the connection goes to an address that was checked)."""
    failure: OSError | None = None
    for address in await egress.addresses(host, port):
        try:
            return await open_wire(address, port)
        except OSError as error:
            failure = error
    assert failure is not None  # addresses() returns at least one
    raise failure


async def _read(wire: Wire, spec: TcpRead, until: bytes | None, timer: _Timer) -> bytes:
    """The reply up to ``until``, to ``spec.length`` bytes or to the peer's close, reading
    never more than one byte past ``spec.max_bytes``."""
    cap, data = spec.max_bytes, bytearray()
    while True:
        room = (spec.length or cap + 1) - len(data)
        chunk = await wire.receive(min(room, _CHUNK))
        if not chunk:
            break
        timer.mark_arrival("first_byte")
        searched = max(len(data) - len(until) + 1, 0) if until else 0
        data += chunk
        if until is not None and 0 <= (at := data.find(until, searched)) <= cap - len(until):
            return bytes(data[: at + len(until)])
        if len(data) == spec.length:
            return bytes(data)
        if len(data) > cap:
            timer.mark_arrival("end")
            raise StepFailed(
                FailureReason.TOO_LARGE,
                f"expected a reply of at most {cap} bytes, got more (stopped reading at "
                f"{len(data)} bytes): {_excerpt(_text(data), timer.mask)}",
            )
    timer.mark_arrival("end")
    if spec.until_close:
        return bytes(data)
    wanted = repr(until.decode()) if until is not None else f"{spec.length} bytes"
    raise StepFailed(
        FailureReason.PROTOCOL,
        f"expected {wanted} before {timer.where} closed the connection, got "
        f"{len(data)} bytes: {_excerpt(_text(data), timer.mask)}",
    )


def _failure(error: OSError, timer: _Timer, host: str) -> StepFailed:
    """The StepFailed that ``error``, raised in ``timer.phase``, stands for."""
    where, phase = timer.where, timer.phase
    said = str(error) or type(error).__name__  # a reset mid-handshake says nothing
    if isinstance(error, socket.gaierror):
        return StepFailed(FailureReason.DNS, f"expected {host!r} to resolve, got: {said}")
    if phase == "tls" or isinstance(error, ssl.SSLError):
        detail = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        return StepFailed(FailureReason.TLS, f"TLS with {where} failed: {detail or said}")
    if isinstance(error, TimeoutError):  # the OS gave up (ETIMEDOUT) before the deadline did
        return StepFailed(
            FailureReason.TIMEOUT, f"expected an answer from {where}, got a {phase} timeout"
        )
    if phase == "connect":
        return StepFailed(FailureReason.CONNECT, f"expected a connection to {where}, got: {said}")
    return StepFailed(
        FailureReason.CONNECT,
        f"expected {where} to keep the connection open while {phase}ing, got: {said}",
    )


async def _check(expect: TcpExpect, reply: str, ctx: StepContext) -> None:
    """Raise StepFailed (assertion) for the first expectation ``reply`` does not meet."""
    unmet = await _unmet(expect, reply, ctx)
    if unmet is not None:
        raise StepFailed(FailureReason.ASSERTION, unmet)


async def _unmet(expect: TcpExpect, reply: str, ctx: StepContext) -> str | None:
    mask = ctx.masker
    for needle in ctx.template.render(_texts(expect.contains)):
        if needle not in reply:
            return f"expected the reply to contain {needle!r}, got {_excerpt(reply, mask)}"
    for needle in ctx.template.render(_texts(expect.not_contains)):
        at = reply.find(needle)
        if at >= 0:
            around = _around(reply, at, len(needle), mask)
            return f"expected the reply not to contain {needle!r}, found it in {around}"
    if expect.matches is not None:
        try:
            found = await search(expect.matches, reply, ctx.remaining())
        except PatternTooSlow as slow:
            return f"expected the reply to match, but {slow.message}"
        if found is None:
            return f"expected the reply to match {expect.matches!r}, got {_excerpt(reply, mask)}"
    limit, duration = expect.max_duration, ctx.record.duration
    if limit is not None and duration is not None and duration > limit:
        return f"expected a duration of at most {limit:g}s, took {duration:.3f}s"
    return None


async def _extract(rules: dict[str, TcpExtract], reply: str, ctx: StepContext) -> None:
    """Set ``ctx.variables[name]`` for every rule, in order; messages never show values."""
    for name, rule in rules.items():
        try:
            match = await search(rule.regex, reply, ctx.remaining())
        except PatternTooSlow as slow:
            raise StepFailed(
                FailureReason.EXTRACTION,
                f"expected to extract {name!r} from the reply, but {slow.message}",
            ) from None
        value = None if match is None else match.group(1 if match.re.groups else 0)
        if value is None:  # no match, or an optional group that took no part
            raise StepFailed(
                FailureReason.EXTRACTION,
                f"expected to extract {name!r} from the reply with regex {rule.regex!r}, "
                "found none",
            )
        if rule.secret:
            ctx.masker.add(value)
        ctx.variables[name] = value


def _text(data: bytes | bytearray) -> str:
    return data.decode("utf-8", errors="replace")


def _excerpt(text: str, mask: Mask) -> str:
    """``text`` masked, cut, quoted with its control characters escaped
    (``'220 ready\\r\\n'``)."""
    if not text:
        return "an empty reply"
    cut = masked_cut(text, _SHOWN_CHARS, mask)
    return repr(cut[:_SHOWN_CHARS]) + ("..." if len(cut) > _SHOWN_CHARS else "")


def _around(text: str, at: int, length: int, mask: Mask) -> str:
    """``text[at : at + length]`` with what surrounds it, each side masked before it is
    cut, quoted."""
    before = mask(text[max(0, at - _CONTEXT_CHARS - MASK_WINDOW) : at])[-_CONTEXT_CHARS:]
    after = masked_cut(text[at + length :], _CONTEXT_CHARS, mask).removesuffix("...")
    return _excerpt(before + text[at : at + length] + after, mask)


def _texts(value: str | list[str] | None) -> list[str]:
    """One text or a list of them, as a list."""
    return [value] if isinstance(value, str) else list(value or ())
