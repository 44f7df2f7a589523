"""How every Kafka client of the project connects: TLS and SASL (PLAIN, SCRAM) from the environment.

Every command (``spoc worker``, ``project``, ``publish``, ``notify``, ``demo`` …) and
every client inside it (consumers, producers, the admin client, faust) reads the same
variables, so one set of exports configures a whole deployment, child processes
included, and passwords never appear on a command line (``ps`` shows those):

    SPOC_KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    SPOC_KAFKA_SASL_MECHANISM      PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512
    SPOC_KAFKA_SASL_USERNAME       SPOC_KAFKA_SASL_PASSWORD
    SPOC_KAFKA_SSL_CAFILE          the CA bundle that signed the brokers' certificates (default: the system's)
    SPOC_KAFKA_SSL_CERTFILE        SPOC_KAFKA_SSL_KEYFILE   SPOC_KAFKA_SSL_KEY_PASSWORD   (client certificates)
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from aiokafka.helpers import create_ssl_context

from ledger.errors import TerminalError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PREFIX = "SPOC_KAFKA_"


class KafkaSecurityError(TerminalError):
    """The SPOC_KAFKA_* security settings do not fit together."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> KafkaSecurity:
        def get(name: str) -> str | None:
            return env.get(PREFIX + name) or None

        protocol = (get("SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        mechanism = (get("SASL_MECHANISM") or "PLAIN").upper()
        if protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"{PREFIX}SECURITY_PROTOCOL={protocol!r}: use one of {', '.join(PROTOCOLS)}")
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"{PREFIX}SASL_MECHANISM={mechanism!r}: use one of {', '.join(MECHANISMS)}")
        security = cls(
            protocol, mechanism, get("SASL_USERNAME"), get("SASL_PASSWORD"), get("SSL_CAFILE"), get("SSL_CERTFILE"),
            get("SSL_KEYFILE"), get("SSL_KEY_PASSWORD"),
        )
        if security.sasl and not (security.username and security.password):
            raise KafkaSecurityError(
                f"{PREFIX}SECURITY_PROTOCOL={protocol} needs {PREFIX}SASL_USERNAME and {PREFIX}SASL_PASSWORD"
            )
        for name, path in (("SSL_CAFILE", security.cafile), ("SSL_CERTFILE", security.certfile),
                           ("SSL_KEYFILE", security.keyfile)):
            if path is not None and not os.path.isfile(path):
                raise KafkaSecurityError(f"{PREFIX}{name}={path}: no such file")
        return security

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """One context for every client of the process (the CA file is read once)."""
        if not self.tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.cafile, certfile=self.certfile, keyfile=self.keyfile, password=self.key_password,
        )
        return context

    def client_settings(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's consumer, producer and admin client."""
        settings: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            settings["ssl_context"] = self.ssl_context
        if self.sasl:
            settings.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                            sasl_plain_password=self.password)
        return settings

    def faust_credentials(self) -> Any:
        """faust's ``broker_credentials`` (None for PLAINTEXT)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(
                username=self.username, password=self.password, ssl_context=self.ssl_context,
                mechanism=self.sasl_mechanism,
            )
        if self.tls:
            return faust.SSLCredentials(self.ssl_context)
        return None

    def describe(self) -> str:
        """For error messages and logs: how we connect, never the secrets."""
        if self.sasl:
            return f"{self.protocol} with {self.sasl_mechanism} as {self.username!r}"
        return self.protocol


@lru_cache(maxsize=1)
def kafka_security() -> KafkaSecurity:
    """This process's settings (read once from the environment)."""
    return KafkaSecurity.from_env()


def client_settings() -> dict[str, Any]:
    return kafka_security().client_settings()
