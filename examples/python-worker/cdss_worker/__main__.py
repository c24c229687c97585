"""``python -m cdss_worker``: the Python worker as a process (the environment variables are in README.md).

Prints ``ready`` on stdout once connected and consuming; SIGTERM / SIGINT stop it gracefully (running jobs finish
within WORKER_STOP_GRACE_MS, or go back to the queue).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import threading
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .protocol import _REPO_ROOT

DEFAULT_MODEL = _REPO_ROOT / "models" / "brats-demo"


class ConfigError(Exception):
    pass


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise ConfigError(f"{name}: an integer from {low} to {high}")
    return int(raw)


def load_config(env: dict[str, str]) -> dict:
    """The worker's settings from the environment; raises :class:`ConfigError` naming each bad variable."""
    problems = []
    config: dict = {}
    for name, schemes in (("AMQP_URL", ("amqp", "amqps")), ("ORTHANC_URL", ("http", "https"))):
        value = env.get(name, "")
        if urlsplit(value).scheme not in schemes or not urlsplit(value).netloc:
            problems.append(f"{name}: a {'/'.join(schemes)} URL is required")
        config[name] = value
    prefix = env.get("CDSS_JOBS_PREFIX", "") or "cdss.ai"
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", prefix):
        problems.append("CDSS_JOBS_PREFIX: 1-100 of A-Z a-z 0-9 . _ -")
    config["prefix"] = prefix
    delays = env.get("CDSS_JOBS_RETRY_DELAYS_MS", "") or "1000,5000,30000"
    if not re.fullmatch(r"\d{1,8}(,\d{1,8}){0,9}", delays) or not all(1 <= int(d) <= 86_400_000 for d in delays.split(",")):
        problems.append("CDSS_JOBS_RETRY_DELAYS_MS: 1-10 comma-separated delays in ms, each 1-86400000")
    config["retry_delays_ms"] = tuple(int(d) for d in delays.split(",") if d.isdigit())
    worker_id = env.get("WORKER_ID", "") or f"{socket.gethostname()}-py-{uuid.uuid4().hex[:8]}"
    if len(worker_id) > 128:
        problems.append("WORKER_ID: at most 128 characters")
    config["worker_id"] = worker_id
    model_path = Path(env.get("CDSS_MODEL_PATH", "") or DEFAULT_MODEL)
    config["model_path"] = model_path.parent if model_path.suffix == ".json" else model_path
    try:
        config["prefetch"] = _int(env, "WORKER_CONCURRENCY", 1, 1, 16)
        config["job_timeout_s"] = _int(env, "WORKER_JOB_TIMEOUT_MS", 15 * 60_000, 1, 24 * 3_600_000) / 1000
        config["heartbeat_s"] = _int(env, "WORKER_HEARTBEAT_MS", 30_000, 100, 3_600_000) / 1000
        config["ack_timeout_s"] = _int(env, "WORKER_ACK_TIMEOUT_MS", 25 * 60_000, 1000, 24 * 3_600_000) / 1000
        config["accepted_after_s"] = _int(env, "WORKER_ACCEPTED_AFTER_MS", 200, 0, 3_600_000) / 1000
        config["grace_s"] = _int(env, "WORKER_STOP_GRACE_MS", 30_000, 0, 3_600_000) / 1000
        config["max_voxels"] = _int(env, "WORKER_MAX_VOXELS", 240 * 240 * 160, 1, 2**31 - 1)
        config["threads"] = _int(env, "WORKER_TORCH_THREADS", os.cpu_count() or 1, 1, 256)
        config["max_attempts"] = _int(env, "WORKER_MAX_ATTEMPTS", len(config["retry_delays_ms"]) + 1, 1, 100)
    except ConfigError as error:
        problems.append(str(error))
    secrets = [x for x in (env.get("WORKER_WEBHOOK_SECRET", "") or "").split(",") if x]
    if any(len(x) < 16 for x in secrets):
        problems.append("WORKER_WEBHOOK_SECRET: each secret (comma-separated) at least 16 characters")
    config["webhook_secrets"] = secrets
    level = (env.get("CDSS_LOG_LEVEL", "") or "info").lower()
    levels = {"fatal": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG", "trace": "DEBUG"}
    if level not in levels and level != "silent":
        problems.append("CDSS_LOG_LEVEL: fatal|error|warn|info|debug|trace|silent")
    config["log_level"] = levels.get(level, "CRITICAL")
    if problems:
        raise ConfigError("\n".join(f"  - {p}" for p in problems))
    return config


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))


def main() -> int:
    try:
        config = load_config(dict(os.environ))
    except ConfigError as error:
        sys.stderr.write(f"Invalid configuration:\n{error}\n")
        return 2
    logging.basicConfig(
        level=config["log_level"], stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    warnings.filterwarnings("ignore", category=UserWarning, module=r"monai\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    log = logging.getLogger("cdss_worker")

    import torch  # slow imports after the configuration is checked

    from .analysis import AnalysisSettings, analyse, dicomweb_client
    from .jobs import JobWorker, WorkerOptions
    from .model import ModelError, load_model
    from .webhooks import WebhookSender

    torch.set_num_threads(config["threads"])
    try:
        model = load_model(config["model_path"])  # fail fast on a broken model
    except ModelError as error:
        sys.stderr.write(f"Python worker failed to start: the model could not be loaded: {error}\n")
        return 1
    orthanc = urlsplit(config["ORTHANC_URL"])
    username = os.environ.get("ORTHANC_USERNAME") or (orthanc.username or None)
    password = os.environ.get("ORTHANC_PASSWORD") or (orthanc.password or None)
    client = dicomweb_client(_redact(config["ORTHANC_URL"]), username, password, timeout_s=60)
    settings = AnalysisSettings(
        max_voxels=config["max_voxels"], job_timeout_s=config["job_timeout_s"], worker_id=config["worker_id"]
    )
    worker = JobWorker(
        WorkerOptions(
            url=config["AMQP_URL"],
            prefix=config["prefix"],
            retry_delays_ms=config["retry_delays_ms"],
            worker_id=config["worker_id"],
            prefetch=config["prefetch"],
            max_attempts=config["max_attempts"],
            ack_timeout_s=config["ack_timeout_s"],
            heartbeat_s=config["heartbeat_s"],
            accepted_after_s=config["accepted_after_s"],
            grace_s=config["grace_s"],
        ),
        lambda ctx: analyse(ctx, client, model, settings),
        WebhookSender(config["webhook_secrets"]) if config["webhook_secrets"] else None,
    )

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping (%s): finishing or handing back jobs in flight", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def announce() -> None:
        if worker.ready.wait():
            log.info(
                "python worker ready: worker %s, model %s %s, prefix %s, broker %s, PACS %s",
                config["worker_id"],
                model.ref["id"],
                model.ref["version"],
                config["prefix"],
                _redact(config["AMQP_URL"]),
                _redact(config["ORTHANC_URL"]),
            )
            print("ready", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
