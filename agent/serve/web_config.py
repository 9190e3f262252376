"""Who may reach the agent's endpoints: the exporter web configuration file.

``--web.config.file`` takes the file every official Prometheus exporter takes
(exporter-toolkit's ``docs/web-configuration.md``), so one file can serve journeyman and
the exporters beside it. What journeyman understands of it:

- ``tls_server_config``: ``cert_file``, ``key_file`` (relative to the file's folder),
  ``client_ca_file`` or ``client_ca`` (PEM text), ``client_auth_type`` (``NoClientCert``,
  ``VerifyClientCertIfGiven``, ``RequireAndVerifyClientCert``), ``min_version`` and
  ``max_version`` (``TLS12``, ``TLS13``), ``prefer_server_cipher_suites``.
- ``http_server_config``: ``headers`` (the five exporter-toolkit allows, with its value
  checks) and ``http2`` (accepted; the agent speaks HTTP/1.1 only).
- ``basic_auth_users``: user name -> bcrypt hash.

The exporter-toolkit keys it does not implement (``cert``, ``key``, ``cipher_suites``,
``curve_preferences``, ``client_allowed_sans``, ``rate_limit``, the client auth types that
do not verify a certificate) are refused by name, like unknown keys: a file is never half
understood. :func:`load_web_config` reads and checks a file, certificates and key loaded,
and raises :class:`WebConfigError`, one line: ``file:line:col: key: message``.

:class:`WebAccess` is the configuration in force. Its file and the files it names are
looked at (``stat``) on every request and every TLS handshake, and read again when one
changed: users and headers apply at once; certificate, key and client CAs to the next
handshake; ``client_auth_type`` and the TLS versions to the next connection (and the
client certificate rule to every request at once). A file that no longer loads is logged
and the last good configuration stays; turning TLS on or off needs a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import bcrypt
from pydantic import Field, ValidationError, field_validator, model_validator

from agent.language.field_errors import field_errors, format_path
from agent.language.fields import StrictModel, error_at
from agent.language.yaml_marks import Marks, Position, YamlProblem, parse

__all__ = ["WebAccess", "WebConfig", "WebConfigError", "load_web_config"]

_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# exporter-toolkit's own list: other headers cannot be set; some take fixed values only.
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT_HASH = re.compile(rb"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_HTPASSWD = "htpasswd -nBC 10 '' | tr -d ':\\n'"
_VERIFIED_KEEP = 256  # credentials remembered as verified (a few users, a few scrapers)


class WebConfigError(ValueError):
    """A web config file that cannot be used, as one line naming the file and the key."""


def _refuse(data: Any, unsupported: Mapping[str, str]) -> Any:
    """Refuse, by name and with the reason, the exporter-toolkit keys not implemented."""
    if isinstance(data, dict):
        for key, why in unsupported.items():
            if key in data:
                raise error_at(f"an exporter-toolkit key journeyman does not support: {why}", key)
    return data


class TlsServerConfig(StrictModel):
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS12", "TLS13"] = "TLS13"
    prefer_server_cipher_suites: bool = True

    @model_validator(mode="before")
    @classmethod
    def _known_to_the_toolkit(cls, data: Any) -> Any:
        return _refuse(
            data,
            {
                "cert": "use cert_file",
                "key": "use key_file",
                "cipher_suites": "OpenSSL's default suites are used",
                "curve_preferences": "OpenSSL's default curves are used",
                "client_allowed_sans": "use a client CA that signs only the allowed clients",
            },
        )

    @field_validator("client_auth_type", mode="before")
    @classmethod
    def _verified_only(cls, value: Any) -> Any:
        if value in _UNVERIFIED_AUTH:
            raise ValueError(
                f"{value} accepts certificates nobody verified: use "
                "RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
            )
        return value

    @field_validator("min_version", "max_version", mode="before")
    @classmethod
    def _current_versions(cls, value: Any) -> Any:
        if value in ("TLS10", "TLS11"):
            raise ValueError(f"{value} is deprecated and not offered: use TLS12 or TLS13")
        return value

    @model_validator(mode="after")
    def _complete(self) -> TlsServerConfig:
        for field in ("cert_file", "key_file"):
            if getattr(self, field) is None:
                raise error_at(f"{field} missing (TLS needs both cert_file and key_file)", field)
        has_ca = self.client_ca_file is not None or self.client_ca is not None
        if has_ca and self.client_auth_type == "NoClientCert":
            raise error_at(
                "client CAs are set but client_auth_type is NoClientCert: set "
                "RequireAndVerifyClientCert",
                "client_auth_type",
            )
        if not has_ca and self.client_auth_type != "NoClientCert":
            raise error_at(
                f"{self.client_auth_type} needs client_ca_file (or client_ca)", "client_auth_type"
            )
        if self.min_version == "TLS13" and self.max_version == "TLS12":
            raise error_at("max_version TLS12 is below min_version TLS13", "max_version")
        return self


class HttpServerConfig(StrictModel):
    http2: bool = True  # accepted for compatibility: the agent speaks HTTP/1.1 only
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _allowed_headers(self) -> HttpServerConfig:
        for name, value in self.headers.items():
            if name not in _HEADERS:
                raise error_at(
                    f"header {name!r} cannot be set here (these can: {', '.join(_HEADERS)})",
                    "headers",
                    name,
                )
            if _HEADERS[name] and value not in _HEADERS[name]:
                raise error_at(
                    f"must be one of {', '.join(_HEADERS[name])}, got {value!r}", "headers", name
                )
            if any(ord(char) < 32 or ord(char) == 127 for char in value):
                raise error_at("must not hold control characters", "headers", name)
        return self


class WebConfigFile(StrictModel):
    """The file as written (every key optional: an empty file is plain HTTP, no auth)."""

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _known_to_the_toolkit(cls, data: Any) -> Any:
        return _refuse(data, {"rate_limit": "rate limiting is not implemented"})

    @model_validator(mode="after")
    def _bcrypt_hashes(self) -> WebConfigFile:
        for user, hashed in self.basic_auth_users.items():
            if not _BCRYPT_HASH.match(hashed.encode()):
                raise error_at(
                    f"not a bcrypt hash (make one with {_HTPASSWD})", "basic_auth_users", user
                )
        return self


@dataclass(frozen=True)
class WebConfig:
    """A loaded, checked web config: the TLS context it makes, its users and headers."""

    path: Path
    tls: ssl.SSLContext | None
    client_auth: ssl.VerifyMode  # what the TLS handshake demands of clients
    users: Mapping[str, bytes]  # user -> bcrypt hash
    headers: Mapping[str, str]
    files: tuple[Path, ...]  # the file and those it names, watched for changes


def load_web_config(path: Path) -> WebConfig:
    """Read and check ``path`` (certificates, key and CAs loaded); WebConfigError if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WebConfigError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise WebConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    documents, problems = parse(text)
    found = [document for document in documents if document.data is not None]
    for document in found:
        problems += document.problems
    if problems:
        _fail(path, problems)
    if len(found) > 1:
        _fail(path, [YamlProblem(found[1].marks.at(()), "a web config is one YAML document")])
    data, marks = (found[0].data, found[0].marks) if found else ({}, Marks())
    if not isinstance(data, dict):
        _fail(path, [YamlProblem(Position(1, 1), "expected a mapping of keys")])
    try:
        model = WebConfigFile.model_validate(data)
    except ValidationError as error:
        secret = frozenset({"basic_auth_users"})
        errors = field_errors(error, data, WebConfigFile, secret_fields=secret)
        _fail(path, [YamlProblem(marks.at(e.path), e.message, e.path) for e in errors])
    tls, files = None, [path]
    if model.tls_server_config is not None:
        tls, named = _tls_context(model.tls_server_config, path, marks)
        files += named
    return WebConfig(
        path=path,
        tls=tls,
        client_auth=tls.verify_mode if tls else ssl.CERT_NONE,
        users={user: hashed.encode() for user, hashed in model.basic_auth_users.items()},
        headers=dict(model.http_server_config.headers),
        files=tuple(files),
    )


def _fail(path: Path, problems: list[YamlProblem]) -> NoReturn:
    first = min(problems, key=lambda p: (p.position.line, p.position.column))
    key = f" {format_path(first.path)}:" if first.path else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise WebConfigError(
        f"{path}:{first.position.line}:{first.position.column}:{key} {first.message}{more}"
    )


def _tls_context(
    config: TlsServerConfig, path: Path, marks: Marks
) -> tuple[ssl.SSLContext, list[Path]]:
    """The server context ``config`` describes, and the files it read."""

    def fail(key: str, message: str) -> NoReturn:
        at = ("tls_server_config", key)
        _fail(path, [YamlProblem(marks.at(at), message, at)])

    def readable(key: str, name: str) -> Path:
        file = path.parent / name
        try:
            file.read_bytes()
        except OSError as error:
            fail(key, f"cannot read {file}: {error.strerror or error}")
        return file

    assert config.cert_file is not None  # the model requires both
    assert config.key_file is not None
    cert, key = readable("cert_file", config.cert_file), readable("key_file", config.key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.min_version]
    context.maximum_version = _TLS_VERSIONS[config.max_version]
    if config.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        fail("cert_file", f"{cert} and key_file {key} are not a usable pair: {_reason(error)}")
    files = [cert, key]
    try:
        if config.client_ca_file is not None:
            files.append(readable("client_ca_file", config.client_ca_file))
            context.load_verify_locations(cafile=files[-1])
        if config.client_ca is not None:
            context.load_verify_locations(cadata=config.client_ca)
    except (ssl.SSLError, ValueError) as error:
        which = "client_ca_file" if config.client_ca_file is not None else "client_ca"
        fail(which, f"no usable CA certificate: {_reason(error)}")
    context.verify_mode = _CLIENT_AUTH[config.client_auth_type]
    return context, files


def _reason(error: Exception) -> str:
    """OpenSSL's words without the CPython source line."""
    text = error.args[1] if isinstance(error, ssl.SSLError) and len(error.args) > 1 else error
    return re.sub(r" \(_ssl\.c:\d+\)$", "", str(text))


def _fingerprint(files: tuple[Path, ...]) -> tuple[tuple[int, ...] | None, ...]:
    """What changes when one of ``files`` is rewritten, replaced (a Kubernetes secret's
    symlink swap), removed or created."""
    seen: list[tuple[int, ...] | None] = []
    for file in files:
        try:
            stat = os.stat(file)
        except OSError:
            seen.append(None)
        else:
            seen.append((stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev))
    return tuple(seen)


class WebAccess:
    """The web config in force for one server: TLS, credentials, headers; kept current.

    Basic auth compares with bcrypt (constant time), off the event loop and one at a time,
    so that a password spray costs one core and never stalls the schedule. Successful
    verifications are remembered by an HMAC of the credentials under a key made for this
    process, never the credentials themselves, so a scrape every 15 s costs no bcrypt. An
    unknown user is checked against a decoy hash of the same cost: the time of an answer
    does not tell which users exist.
    """

    def __init__(self, path: Path, *, protect_probes: bool = False, logger: Any) -> None:
        self.protect_probes = protect_probes
        self.config = load_web_config(path)
        self._log = logger
        self._seen = _fingerprint(self.config.files)
        self._listening = self.config.tls
        if self._listening is not None:
            self._listening.sni_callback = self._on_handshake
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, None] = {}
        self._bcrypt = asyncio.Lock()
        self._decoy: bytes | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The context to listen with (None: plain HTTP)."""
        return self._listening

    def refresh(self) -> None:
        """Read the file again if it, or a file it names, changed since last looked at."""
        seen = _fingerprint(self.config.files)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            config = load_web_config(self.config.path)
            if (config.tls is None) != (self._listening is None):
                raise WebConfigError(f"{config.path}: turning TLS on or off needs a restart")
        except WebConfigError as error:
            self._log.error("web_config_reload_failed", error=str(error), keeping="last good")
            return
        self.config, self._seen = config, _fingerprint(config.files)
        self._verified.clear()
        self._decoy = None
        if self._listening is not None and config.tls is not None:
            self._listening.verify_mode = config.tls.verify_mode
            self._listening.minimum_version = config.tls.minimum_version
            self._listening.maximum_version = config.tls.maximum_version
        self._log.info("web_config_reloaded", path=str(config.path))

    def _on_handshake(self, connection: ssl.SSLObject, name: str | None, _: Any) -> None:
        """Each TLS handshake takes the current certificate, key and client CAs."""
        try:
            self.refresh()
            if self.config.tls is not None and self.config.tls is not self._listening:
                connection.context = self.config.tls
        except Exception as error:  # a handshake callback must not raise
            self._log.error("web_config_handshake_failed", error=repr(error))

    def client_certificate_ok(self, peercert: Any) -> bool:
        """Whether a connection's verified client certificate (``peercert``) satisfies the
        current client_auth_type (a connection opened under an older rule is held to it)."""
        return self.config.client_auth != ssl.CERT_REQUIRED or bool(peercert)

    async def authorized(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header holds the password of a configured user (any
        request is, when no user is configured)."""
        users = self.config.users
        if not users:
            return True
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user.encode(), hashed or b"", password):
            mac.update(len(part).to_bytes(4, "big") + part)
        remembered = mac.digest()
        if hashed is not None and remembered in self._verified:
            return True
        async with self._bcrypt:
            if hashed is None and self._decoy is None:
                self._decoy = await asyncio.to_thread(_decoy_hash, users.values())
            ok = await asyncio.to_thread(_checkpw, password, hashed or self._decoy or b"")
        ok = ok and hashed is not None
        if ok and users is self.config.users:  # not reloaded meanwhile
            self._verified[remembered] = None
            while len(self._verified) > _VERIFIED_KEEP:
                del self._verified[next(iter(self._verified))]
        return ok


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """``Basic base64(user:password)`` -> (user, password); None when it is not that."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode(), password) if sep else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # longer than bcrypt's 72 bytes, or a hash bcrypt cannot read
        return False


def _decoy_hash(hashes: Iterable[bytes]) -> bytes:
    """A hash of a random password at the highest cost among ``hashes``."""
    rounds = max(int(hashed[4:6]) for hashed in hashes)
    return bcrypt.hashpw(secrets.token_hex(16).encode(), bcrypt.gensalt(rounds))
