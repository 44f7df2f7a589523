"""The SPOC_KAFKA_* security settings: checked up front, mapped to aiokafka, secrets kept out of reprs."""

from __future__ import annotations

import pytest

from processors.kafka.security import KafkaSecurity, KafkaSecurityError


def test_settings_that_do_not_fit_together_name_the_variable() -> None:
    with pytest.raises(KafkaSecurityError, match="SPOC_KAFKA_SASL_USERNAME"):
        KafkaSecurity.from_env({"SPOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    with pytest.raises(KafkaSecurityError, match="SCRAM-SHA-512"):
        KafkaSecurity.from_env({"SPOC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SPOC_KAFKA_SASL_MECHANISM": "MD5"})
    with pytest.raises(KafkaSecurityError, match="no such file"):
        KafkaSecurity.from_env({"SPOC_KAFKA_SECURITY_PROTOCOL": "SSL", "SPOC_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"})
    security = KafkaSecurity.from_env({
        "SPOC_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "SPOC_KAFKA_SASL_MECHANISM": "scram-sha-256",
        "SPOC_KAFKA_SASL_USERNAME": "u", "SPOC_KAFKA_SASL_PASSWORD": "p4ss",
    })
    assert security.client_settings() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "u",
        "sasl_plain_password": "p4ss",
    }
    assert "p4ss" not in repr(security) and "p4ss" not in security.describe()
