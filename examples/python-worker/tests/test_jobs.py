"""The worker's protocol semantics on the real RabbitMQ (``CDSS_TEST_AMQP_URL``, as ``npm run services -- env``
prints it), each test under a prefix of its own that is deleted afterwards, with a stub analysis: events and their
AMQP properties, acknowledgements, dead letters, retries and attempts, cancellation, deadlines, heartbeats and the
graceful stop. The same behaviour as the TypeScript ``JobWorker`` (packages/ai-jobs/src/jobs.contract.ts)."""

from __future__ import annotations

import errno
import json
import os
import random
import threading
import time
import uuid
from typing import Any, Callable

import pika
import pytest

from cdss_worker.jobs import (
    ATTEMPT_HEADER,
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_SOURCE_HEADER,
    JobFailure,
    JobWorker,
    Names,
    WorkerOptions,
    attempt_of,
    declare_topology,
)
from cdss_worker.protocol import VECTORS_DIR, create_message, decode_message, encode_message

AMQP_URL = os.environ.get("CDSS_TEST_AMQP_URL")
if not AMQP_URL and os.environ.get("CI") == "true":
    raise RuntimeError("CI=true and CDSS_TEST_AMQP_URL is not set (npm run services -- env)")
pytestmark = pytest.mark.skipif(not AMQP_URL, reason="no RabbitMQ: set CDSS_TEST_AMQP_URL (npm run services -- env)")

RESULT = json.loads((VECTORS_DIR / "valid" / "analysis.succeeded.json").read_text("utf-8"))["message"]["result"]
REQUEST = json.loads((VECTORS_DIR / "valid" / "analysis.requested.json").read_text("utf-8"))["message"]
RETRY_DELAYS = (50, 100, 150)


class Broker:
    """A test's own topology on the shared broker, and a client to publish requests and read what comes out."""

    def __init__(self) -> None:
        self.prefix = f"cdss.ai.pytest-{uuid.uuid4().hex[:8]}"
        self.names = Names(self.prefix, RETRY_DELAYS)
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.connection.channel()
        declare_topology(self.channel, self.names, RETRY_DELAYS)
        self.channel.confirm_delivery()

    def request(self, body: bytes | None = None, **changes: Any) -> dict[str, Any]:
        fields = {k: v for k, v in REQUEST.items() if k not in ("protocol", "version", "messageId", "jobId", "sentAt", "type")}
        fields.pop("callbackUrl")
        fields.pop("deadline")
        fields.update(changes)
        message = create_message("analysis.requested", str(uuid.uuid4()), **fields)
        self.channel.basic_publish(
            self.names.work_exchange,
            "analysis.requested",
            body if body is not None else encode_message(message),
            pika.BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                message_id=message["messageId"],
                type="analysis.requested",
                correlation_id=message["jobId"],
                priority=4,
            ),
        )
        return message

    def cancel(self, job_id: str) -> None:
        message = create_message("analysis.cancelled", job_id, cancelledBy="user-17", reason="no longer needed")
        self.channel.basic_publish(
            self.names.events_exchange, "control.cancel", encode_message(message), pika.BasicProperties(delivery_mode=2)
        )

    def take(self, queue: str, until: Callable[[list], bool], timeout: float = 10.0) -> list[tuple[Any, Any, bytes]]:
        """Messages of a queue (acknowledged) until ``until(messages)`` holds."""
        got: list[tuple[Any, Any, bytes]] = []
        end = time.monotonic() + timeout
        while not until(got):
            if time.monotonic() > end:
                raise AssertionError(f"timed out on {queue}: {[m[1].type for m in got]}")
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.02)
                continue
            got.append((method, props, body))
        return got

    def events(self, job_id: str, final: tuple[str, ...] = ("analysis.succeeded", "analysis.failed", "analysis.cancelled")):
        """Every event of a job up to its final one, decoded (and validated) as the server would."""
        raw = self.take(self.names.events_queue, lambda got: any(p.type in final for _, p, _ in got))
        out = []
        for method, props, body in raw:
            decoded = decode_message(body)
            assert decoded.ok, decoded.detail
            message = decoded.message
            assert message["jobId"] == job_id
            assert method.routing_key == "job." + message["type"].split(".", 1)[1]
            assert props.type == message["type"] and props.message_id == message["messageId"]
            assert props.correlation_id == job_id and props.delivery_mode == 2
            assert props.content_type == "application/json"
            out.append(message)
        return out

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def close(self) -> None:
        for q in (self.names.work_queue, self.names.events_queue, self.names.dead_queue, *self.names.retry_queues):
            self.channel.queue_delete(q)
        for e in (self.names.work_exchange, self.names.events_exchange, self.names.dead_exchange):
            self.channel.exchange_delete(e)
        self.connection.close()


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.close()


@pytest.fixture
def start_worker(broker):
    started: list[tuple[JobWorker, threading.Thread]] = []

    def start(handler, webhooks=None, **options: Any) -> JobWorker:
        settings = {"retry_delays_ms": RETRY_DELAYS, "worker_id": "pytest-worker", **options}
        worker = JobWorker(WorkerOptions(url=AMQP_URL, prefix=broker.prefix, **settings), handler, webhooks)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.ready.wait(10)
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop(grace_s=0)
        thread.join(10)
        assert not thread.is_alive()


def _loopback_server(handler):
    """A ThreadingHTTPServer on 127.0.0.1 at a random port in 24500-27999: below the kernel's ephemeral range (32768+)
    and clear of private_broker's 24000-24497; another port when one is taken (EADDRINUSE)."""
    from http.server import ThreadingHTTPServer

    for attempt in range(50):
        try:
            return ThreadingHTTPServer(("127.0.0.1", random.randrange(24500, 28000)), handler)
        except OSError as error:
            if error.errno != errno.EADDRINUSE or attempt == 49:
                raise
    raise AssertionError("unreachable")


def types(events):
    return [e["type"] for e in events]


def test_a_job_reports_accepted_progress_and_its_result_then_is_acknowledged(broker, start_worker):
    def handler(ctx):
        ctx.progress("fetch", 2)
        ctx.progress("inference", 50)
        return RESULT

    start_worker(handler)
    request = broker.request()
    events = broker.events(request["jobId"])
    assert types(events) == ["analysis.accepted", "analysis.progress", "analysis.progress", "analysis.succeeded"]
    assert events[0]["attempt"] == 1 and events[0]["workerId"] == "pytest-worker"
    assert [e["percent"] for e in events[1:3]] == [2, 50]
    assert events[-1]["result"] == RESULT and events[-1]["attempt"] == 1
    time.sleep(0.2)
    assert broker.depth(broker.names.work_queue) == 0


def test_a_quick_job_publishes_only_its_final_event_with_the_attempt(broker, start_worker):
    start_worker(lambda ctx: RESULT)
    request = broker.request()
    events = broker.events(request["jobId"])
    assert types(events) == ["analysis.succeeded"]
    assert events[0]["attempt"] == 1


def test_poison_requests_are_dead_lettered_with_their_reason_and_consuming_goes_on(broker, start_worker):
    start_worker(lambda ctx: RESULT)
    broker.request(body=b'{"protocol":"cdss.ai-jobs",')
    bad = broker.request(patientRef="Patient/42")
    broker.channel.basic_publish(
        broker.names.work_exchange,
        "analysis.requested",
        json.dumps({**bad, "patientRef": "Ada Lovelace"}).encode(),
        pika.BasicProperties(delivery_mode=2, message_id="poison-2"),
    )
    dead = broker.take(broker.names.dead_queue, lambda got: len(got) == 2)
    headers = [p.headers for _, p, _ in dead]
    assert [h[DEAD_LETTER_REASON_HEADER] for h in headers] == ["malformed", "schema-invalid"]
    assert all(h[DEAD_LETTER_SOURCE_HEADER] == broker.names.work_queue for h in headers)
    assert "patientRef: pattern" in headers[1][DEAD_LETTER_DETAIL_HEADER]
    assert "Ada" not in headers[1][DEAD_LETTER_DETAIL_HEADER]
    # the valid copy of that job was analysed
    assert types(broker.events(bad["jobId"])) == ["analysis.succeeded"]


def test_a_retryable_failure_is_retried_through_the_retry_queue_with_the_next_attempt(broker, start_worker):
    attempts: list[int] = []

    def handler(ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise JobFailure("input-fetch-failed", "PACS unreachable", retryable=True)
        return RESULT

    start_worker(handler)
    request = broker.request()
    events = broker.events(request["jobId"])
    assert attempts == [1, 2]
    assert types(events) == ["analysis.succeeded"] and events[0]["attempt"] == 2


def test_retries_end_with_failed_after_max_attempts(broker, start_worker):
    def handler(ctx):
        raise RuntimeError("boom with a value that must not leave: Ada Lovelace")

    start_worker(handler, max_attempts=3)
    request = broker.request()
    (failed,) = broker.events(request["jobId"])
    assert failed["type"] == "analysis.failed" and failed["attempt"] == 3
    assert failed["reason"] == "internal-error" and failed["retryable"] is True
    assert failed["detail"] == "unexpected RuntimeError in the job handler (after 3 attempts)"


def test_a_failure_that_is_not_retryable_fails_at_once(broker, start_worker):
    def handler(ctx):
        raise JobFailure("series-missing", "the FLAIR series is not in the study")

    start_worker(handler)
    request = broker.request()
    (failed,) = broker.events(request["jobId"])
    assert (failed["reason"], failed["retryable"], failed["attempt"]) == ("series-missing", False, 1)


def test_an_invalid_result_fails_the_job(broker, start_worker):
    start_worker(lambda ctx: {"regions": []})
    request = broker.request()
    (failed,) = broker.events(request["jobId"])
    assert failed["reason"] == "internal-error" and failed["detail"] == "handler returned an invalid result"


def test_a_running_job_is_cancelled_and_reported(broker, start_worker):
    running = threading.Event()

    def handler(ctx):
        ctx.progress("inference", 30)
        running.set()
        while not ctx.should_stop():
            time.sleep(0.01)
        raise AssertionError("unreachable: the worker reports the cancellation")

    start_worker(handler)
    request = broker.request()
    assert running.wait(10)
    broker.cancel(request["jobId"])
    events = broker.events(request["jobId"])
    assert types(events)[-1] == "analysis.cancelled"
    assert events[-1]["cancelledBy"] == "user-17" and events[-1]["reason"] == "no longer needed"


def test_a_request_cancelled_before_it_arrives_is_reported_and_not_run(broker, start_worker):
    ran: list[str] = []
    start_worker(lambda ctx: ran.append(ctx.request["jobId"]) or RESULT)
    job_id = str(uuid.uuid4())
    broker.cancel(job_id)
    time.sleep(0.3)
    request = broker.request()
    # the same job id as the cancellation
    broker.channel.basic_publish(
        broker.names.work_exchange,
        "analysis.requested",
        encode_message({**request, "jobId": job_id}),
        pika.BasicProperties(delivery_mode=2),
    )
    broker.events(request["jobId"])
    assert types(broker.events(job_id)) == ["analysis.cancelled"]
    assert job_id not in ran


def test_a_request_past_its_deadline_fails_without_running(broker, start_worker):
    start_worker(lambda ctx: RESULT)
    request = broker.request(deadline="2020-01-01T00:00:00Z")
    (failed,) = broker.events(request["jobId"])
    assert (failed["reason"], failed["retryable"]) == ("deadline-exceeded", False)


def test_a_deadline_passing_while_running_stops_the_job(broker, start_worker):
    def handler(ctx):
        while not ctx.should_stop():
            time.sleep(0.01)
        raise AssertionError("unreachable")

    start_worker(handler)
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    request = broker.request(deadline=deadline)
    events = broker.events(request["jobId"])
    assert events[-1]["reason"] == "deadline-exceeded" and "while running" in events[-1]["detail"]


def test_a_long_job_sends_heartbeats_and_is_acknowledged_early(broker, start_worker):
    release = threading.Event()

    def handler(ctx):
        ctx.progress("inference", 40)
        release.wait(10)
        return RESULT

    start_worker(handler, heartbeat_s=0.2, ack_timeout_s=0.5)
    request = broker.request()
    time.sleep(1.2)
    # acknowledged early: a consumer on the work queue would not get it back if this worker died now
    assert broker.channel.queue_declare(broker.names.work_queue, passive=True).method.message_count == 0
    release.set()
    events = broker.events(request["jobId"])
    beats = [e for e in events if e["type"] == "analysis.progress"]
    assert len(beats) >= 4  # the progress itself, then a heartbeat every 0.2 s
    assert all(b["percent"] == 40 and b["stage"] == "inference" for b in beats)
    assert types(events)[0] == "analysis.accepted" and types(events)[-1] == "analysis.succeeded"


def test_stopping_hands_a_running_job_back_to_the_queue(broker, start_worker):
    running = threading.Event()

    def handler(ctx):
        running.set()
        while not ctx.should_stop():
            time.sleep(0.01)
        raise AssertionError("unreachable")

    worker = start_worker(handler, accepted_after_s=0)
    broker.request()
    assert running.wait(10)
    worker.stop(grace_s=0.1)
    end = time.monotonic() + 10
    while broker.depth(broker.names.work_queue) != 1:
        assert time.monotonic() < end, "the request did not come back to the work queue"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("headers", "attempt"),
    [(None, 1), ({}, 1), ({ATTEMPT_HEADER: 3}, 3), ({ATTEMPT_HEADER: "2"}, 2), ({ATTEMPT_HEADER: 0}, 1),
     ({ATTEMPT_HEADER: 1.5}, 1), ({ATTEMPT_HEADER: "x"}, 1), ({ATTEMPT_HEADER: b"4"}, 4)],
)
def test_the_attempt_header_reads_as_the_typescript_transport_reads_it(headers, attempt):
    assert attempt_of(headers) == attempt


def test_events_of_a_request_with_a_callback_url_are_also_posted_signed(broker, start_worker):
    import hashlib
    import hmac
    from http.server import BaseHTTPRequestHandler

    from cdss_worker.webhooks import WebhookSender

    secret = "s" * 32
    received: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 -- http.server's naming
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _loopback_server(Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        def handler(ctx):
            ctx.progress("inference", 50)
            return RESULT

        start_worker(handler, webhooks=WebhookSender(secret))
        request = broker.request(callbackUrl=f"http://127.0.0.1:{server.server_address[1]}/hook")
        events = broker.events(request["jobId"])
        end = time.monotonic() + 10
        while len(received) < len(events) and time.monotonic() < end:
            time.sleep(0.05)
        assert sorted(json.loads(b)["messageId"] for _, b in received) == sorted(e["messageId"] for e in events)
        for headers, body in received:
            fields = dict(part.split("=", 1) for part in headers["cdss-signature"].split(","))
            expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(fields["v1"], expected)
            assert headers["cdss-event-type"] == json.loads(body)["type"]
    finally:
        server.shutdown()
