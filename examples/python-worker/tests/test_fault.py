"""Nothing is lost when the broker goes away: a private RabbitMQ (its own folder and ports, never the shared one) is
stopped for real while a job runs, the job finishes while it is down, and the broker comes back. The worker
reconnects, declares the topology again, publishes the final event it could not publish (confirmed), and the
request the broker redelivers is acknowledged without running the job again."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid

import pika
import pytest

from cdss_worker.jobs import JobWorker, Names, WorkerOptions, declare_topology
from cdss_worker.protocol import VECTORS_DIR, create_message, decode_message, encode_message

if not shutil.which("rabbitmq-server") and not os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server"):
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true and RabbitMQ is not installed (npm run services -- install)")
    pytest.skip("RabbitMQ is not installed (npm run services -- install)", allow_module_level=True)

from private_broker import PrivateBroker  # noqa: E402

RESULT = json.loads((VECTORS_DIR / "valid" / "analysis.succeeded.json").read_text("utf-8"))["message"]["result"]
REQUEST = json.loads((VECTORS_DIR / "valid" / "analysis.requested.json").read_text("utf-8"))["message"]


@pytest.fixture(scope="module")
def broker():
    b = PrivateBroker()
    b.start()
    yield b
    b.destroy()


def publish(url: str, names: Names, message: dict) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    declare_topology(channel, names, (1000, 5000, 30000))
    channel.confirm_delivery()
    channel.basic_publish(
        names.work_exchange,
        "analysis.requested",
        encode_message(message),
        pika.BasicProperties(delivery_mode=2, message_id=message["messageId"], correlation_id=message["jobId"]),
    )
    connection.close()


def drain(url: str, queue: str, wait_s: float) -> list[dict]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    out, end = [], time.monotonic() + wait_s
    while time.monotonic() < end:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.sleep(0.05)
            continue
        out.append(decode_message(body).message)
    depth = channel.queue_declare(queue, passive=True).method.message_count
    connection.close()
    assert depth == 0
    return out


def test_a_broker_restart_mid_job_loses_nothing_and_runs_the_job_once(broker):
    names = Names("cdss.ai", (1000, 5000, 30000))
    running, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def handler(ctx):
        runs.append(ctx.request["jobId"])
        ctx.progress("inference", 50)
        running.set()
        release.wait(60)
        return RESULT

    worker = JobWorker(WorkerOptions(url=broker.url, worker_id="fault-worker", accepted_after_s=0), handler)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(30)
        fields = {k: v for k, v in REQUEST.items() if k not in ("protocol", "version", "messageId", "jobId", "sentAt", "type", "callbackUrl", "deadline")}
        request = create_message("analysis.requested", str(uuid.uuid4()), **fields)
        publish(broker.url, names, request)
        assert running.wait(30)
        broker.stop()
        release.set()  # the job ends while the broker is down: its result waits for the connection
        time.sleep(1)
        broker.start()
        events = drain(broker.url, names.events_queue, wait_s=15)
        final = [e for e in events if e["type"] == "analysis.succeeded"]
        assert len(final) == 1 and final[0]["jobId"] == request["jobId"]
        assert runs == [request["jobId"]]  # the redelivered request was not run again
        assert worker.in_flight == 0
        drain(broker.url, names.work_queue, wait_s=1)  # and it was acknowledged
    finally:
        worker.stop(grace_s=0)
        thread.join(30)
