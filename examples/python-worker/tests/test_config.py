"""The worker's configuration from the environment: defaults, and every bad variable named at once."""

import pytest

from cdss_worker.__main__ import ConfigError, load_config

GOOD = {"AMQP_URL": "amqp://ci:ci-pass@127.0.0.1:25682", "ORTHANC_URL": "http://127.0.0.1:28042"}


def test_defaults_are_the_typescript_workers():
    config = load_config(GOOD)
    assert config["prefix"] == "cdss.ai"
    assert config["retry_delays_ms"] == (1000, 5000, 30000)
    assert config["max_attempts"] == 4
    assert (config["heartbeat_s"], config["ack_timeout_s"], config["accepted_after_s"]) == (30, 1500, 0.2)
    assert config["prefetch"] == 1 and config["job_timeout_s"] == 900 and config["max_voxels"] == 240 * 240 * 160
    assert config["model_path"].name == "brats-demo" and config["webhook_secrets"] == []


def test_every_bad_variable_is_named():
    with pytest.raises(ConfigError) as raised:
        load_config(
            {
                "AMQP_URL": "http://127.0.0.1",
                "ORTHANC_URL": "",
                "CDSS_JOBS_PREFIX": "bad prefix",
                "CDSS_JOBS_RETRY_DELAYS_MS": "00,100",
                "WORKER_CONCURRENCY": "0",
                "WORKER_WEBHOOK_SECRET": "short",
                "CDSS_LOG_LEVEL": "loud",
            }
        )
    message = str(raised.value)
    for name in (
        "AMQP_URL",
        "ORTHANC_URL",
        "CDSS_JOBS_PREFIX",
        "CDSS_JOBS_RETRY_DELAYS_MS",
        "WORKER_CONCURRENCY",
        "WORKER_WEBHOOK_SECRET",
        "CDSS_LOG_LEVEL",
    ):
        assert name in message


def test_a_manifest_path_means_its_folder():
    assert load_config({**GOOD, "CDSS_MODEL_PATH": "/models/x/manifest.json"})["model_path"].as_posix() == "/models/x"
