"""One settings schema: Flask's ``KREUZBERG_WEBHOOK_<NAME>`` and Django's ``KREUZBERG_WEBHOOKS[<NAME>]``
read the same names, with the same defaults, into the same receiver."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from flask import Flask

from kreuzberg_webhooks import MemoryStore, Receiver
from kreuzberg_webhooks.adapters.flask import KreuzbergWebhooks
from kreuzberg_webhooks.django import conf as django_conf
from kreuzberg_webhooks.settings import DEFAULTS
from tests.django.settings import configure

configure()

SECRET = "settings-test-secret-0123456789abcdef01"


def flask_receiver(values: dict[str, Any]) -> Receiver:
    app = Flask(__name__)
    app.config.update({f"KREUZBERG_WEBHOOK_{name}": value for name, value in values.items()})
    return KreuzbergWebhooks(app).receiver_for(app)


def django_receiver(values: dict[str, Any]) -> Receiver:
    with override_settings(KREUZBERG_WEBHOOKS=values):
        return django_conf.build_receiver()


def observed(receiver: Receiver) -> tuple[Any, ...]:
    verifier = receiver.verifier
    return (
        verifier.header,
        verifier.max_body_size,
        verifier.window.max_age,
        verifier.window.max_future,
        receiver.lease,
        receiver.guard_renewal,
        receiver.retention,
        type(receiver.store),
    )


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"SIGNATURE_HEADER": "X-Kreuzberg-Signature"}, id="header"),
        pytest.param({"MAX_BODY_SIZE": 1234}, id="max-body-size"),
        pytest.param({"MAX_AGE": 3600, "MAX_FUTURE": 30}, id="window"),
        pytest.param({"LEASE": 45}, id="lease"),
        pytest.param({"GUARD_RENEWAL": 600}, id="guard-renewal"),
        pytest.param({"RETENTION": 10**6}, id="retention"),
    ],
)
def test_flask_and_django_read_the_same_names_into_the_same_receiver(values: dict[str, Any]) -> None:
    settings = {"SECRET": SECRET, **values}
    assert observed(flask_receiver(settings)) == observed(django_receiver(settings))
    for name, value in values.items():  # the value was read, not a default that happens to agree
        assert value != DEFAULTS[name]


def test_both_default_to_the_same_store() -> None:
    assert DEFAULTS["STORE"] == "memory://"
    assert isinstance(flask_receiver({"SECRET": SECRET}).store, MemoryStore)
    assert isinstance(django_receiver({"SECRET": SECRET}).store, MemoryStore)


def test_django_knows_every_shared_setting() -> None:
    assert set(DEFAULTS) <= set(django_conf.KNOWN_SETTINGS)


def test_flask_still_reads_the_header_setting_of_0_1() -> None:
    receiver = flask_receiver({"SECRET": SECRET, "HEADER": "X-Old-Name"})
    assert receiver.verifier.header == "X-Old-Name"


def test_a_twin_keeps_the_guard_renewal_of_its_receiver() -> None:
    from kreuzberg_webhooks.django.conf import twin

    receiver = django_receiver({"SECRET": SECRET, "GUARD_RENEWAL": 600})
    assert receiver.guard_renewal == 600
    assert twin(receiver).guard_renewal == 600
