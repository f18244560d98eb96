"""Engine settings without a database: sealing, merging (kept, reset, cleared), per-backend checks, redaction."""

from __future__ import annotations

import pytest

from allotment.errors import ValidationFailed
from allotment.inventory import engine_settings as es
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal


def test_sealed_secrets_open_only_with_the_same_server_key():
    sealed = seal("server-key-1", {"token": "jwt.value.sig"})
    assert "jwt.value" not in sealed
    assert unseal("server-key-1", sealed) == {"token": "jwt.value.sig"}
    assert seal("server-key-1", {"token": "jwt.value.sig"}) != sealed  # a fresh IV each time
    with pytest.raises(SecretsUnreadable, match="set them again"):
        unseal("server-key-2", sealed)
    with pytest.raises(SecretsUnreadable):
        unseal("server-key-1", sealed[:-4] + "AAAA")
    assert seal("k", {}) is None and unseal("k", None) == {}


def test_merge_keeps_left_out_settings_resets_null_ones_and_names_what_changed():
    plain = {"log_dir": "/j", "rest_url": "http://h:6820", "rest_user": "u", "partitions": {"a": "p"}}
    new_plain, secrets, changed = es.merge("slurm", plain, {"token": "t"}, {"partitions": None, "rest_url":
                                                                          "http://h:6821"})
    assert new_plain == {"log_dir": "/j", "rest_url": "http://h:6821", "rest_user": "u"}
    assert secrets == {"token": "t"} and changed == ["partitions", "rest_url"]
    _, secrets, changed = es.merge("slurm", new_plain, secrets, {"token": "t"})
    assert changed == []  # the same secret again is no change


def test_every_problem_is_reported_at_once_each_naming_its_field():
    with pytest.raises(ValidationFailed) as caught:
        es.merge("slurm", {}, {}, {"rest_url": "http://h", "slurm_conf": "etc/slurm.conf", "name_prefix": "-x"})
    fields = sorted(e.field for e in caught.value.errors)
    assert fields == ["engine.log_dir", "engine.name_prefix", "engine.rest_user", "engine.slurm_conf",
                      "engine.slurm_conf", "engine.token"]


def test_parse_turns_type_errors_into_field_errors():
    with pytest.raises(ValidationFailed) as caught:
        es.parse({"log_dir": ["/j"], "bogus": 1})
    assert sorted(e.field for e in caught.value.errors) == ["engine.bogus", "engine.log_dir"]


def test_engine_config_hides_its_secrets():
    config = es.EngineConfig("ray", {"resources": {}}, {"address": "http://u:Pa55@head:8265"})
    assert "Pa55" not in repr(config)
    assert config.redact("connect to http://u:Pa55@head:8265 failed") == "connect to *** failed"
    assert es.redact_credentials("GET https://bob:s3cret@x/y") == "GET https://***@x/y"
