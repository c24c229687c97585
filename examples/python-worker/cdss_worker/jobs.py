"""The worker side of the cdss.ai-jobs protocol over RabbitMQ (pika), with the semantics of the TypeScript
``JobWorker`` of ``@cdss/ai-jobs`` (its README, "Writing a worker in another language", and ``worker.ts``):

- topology: declared with exactly the arguments ``AmqpTransport`` uses (so either side may start first);
- requests: consumed from ``<prefix>.work.q`` with a prefetch; each is validated; a body that is not a valid
  ``analysis.requested`` is moved to ``<prefix>.dead`` with ``x-cdss-dead-letter-reason|detail|source`` and
  acknowledged; a request is acknowledged only after its final event (``succeeded``, ``failed`` or ``cancelled``)
  is confirmed by the broker (publisher confirms);
- ``analysis.accepted`` is published once a job has run for ``accepted_after_s`` or reports progress sooner; a job
  that ends before then publishes only its final event, which carries ``attempt``;
- heartbeats: while a job runs after its ``accepted``, ``analysis.progress`` repeating the last progress every
  ``heartbeat_s``; after ``ack_timeout_s`` the request is acknowledged early and the heartbeats keep the job's lease
  (the server's ``reap`` re-publishes a job whose heartbeat stops);
- attempts: ``x-cdss-attempt`` (absent = 1); a retryable failure of a request not yet acknowledged is re-published
  to ``<prefix>.retry.<delay>`` (delay of this attempt) with attempt + 1 and the same properties, then acknowledged,
  until ``max_attempts``; then ``analysis.failed`` with the reason (detail "... (after N attempts)");
- cancellation: an exclusive queue bound to ``<prefix>.events`` with ``control.#``; a running job is stopped and
  reported ``analysis.cancelled``; a request for a job cancelled earlier is reported cancelled and not run;
- deadline: a request past its ``deadline`` fails ``deadline-exceeded`` before or while running;
- a second delivery of a job this worker is running is acknowledged (the running copy reports), and so is one of a job
  whose final event it has published (remembered for the last 10,000 jobs): the server has its outcome;
- reconnection with backoff (100 ms doubling to 5 s, ±20 %): the topology is declared again, consumers resume,
  events not yet confirmed are published again; deliveries of a lost channel are never acknowledged (the broker
  redelivers them);
- graceful stop: stop taking requests, let running jobs finish for ``grace_s``, then hand their requests back;
- webhooks: with a :class:`~cdss_worker.webhooks.WebhookSender`, each event of a request with a ``callbackUrl`` is also
  POSTed there, signed, after the broker confirmed it.

pika's ``BlockingConnection`` is not thread-safe: it lives in the thread that calls :meth:`JobWorker.run`; each job
runs in a thread of its own and talks to it through a queue.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import pika
import pika.exceptions

from .protocol import ProtocolError, create_message, decode_message, encode_message, routing_key
from .webhooks import WebhookSender

log = logging.getLogger("cdss_worker.jobs")

ATTEMPT_HEADER = "x-cdss-attempt"
DEAD_LETTER_REASON_HEADER = "x-cdss-dead-letter-reason"
DEAD_LETTER_DETAIL_HEADER = "x-cdss-dead-letter-detail"
DEAD_LETTER_SOURCE_HEADER = "x-cdss-dead-letter-source"
WORK_ROUTING_KEY = "analysis.requested"
APP_ID = "cdss-python-worker"
CANCELLED_MEMORY = 10_000


class JobFailure(Exception):
    """Fails a job with a reason from the protocol's fixed list; retryable ones are retried until the attempts run
    out. ``detail`` is free of PHI (it is stored and shown)."""

    def __init__(self, reason: str, detail: str, retryable: bool = False):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class Stopped(Exception):
    """Raised in a job's thread once its job is cancelled, past its deadline, or its worker is stopping."""


class JobContext(Protocol):
    request: dict[str, Any]
    attempt: int
    redelivered: bool

    def progress(self, stage: str, percent: float) -> None: ...

    def should_stop(self) -> bool: ...


#: Runs one analysis: returns the protocol's ``result`` object, or raises :class:`JobFailure` (anything else is a
#: retryable ``internal-error``).
JobHandler = Callable[[JobContext], dict[str, Any]]


def attempt_of(headers: dict[str, Any] | None) -> int:
    """The delivery's attempt: the ``x-cdss-attempt`` header read as a number (as JavaScript's ``Number()``)
    when that is an integer ≥ 1, else 1."""
    value = (headers or {}).get(ATTEMPT_HEADER)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return int(number) if number.is_integer() and number >= 1 else 1


@dataclass
class WorkerOptions:
    url: str
    prefix: str = "cdss.ai"
    retry_delays_ms: tuple[int, ...] = (1000, 5000, 30000)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    prefetch: int = 1
    max_attempts: int | None = None
    ack_timeout_s: float = 25 * 60
    heartbeat_s: float = 30
    accepted_after_s: float = 0.2
    grace_s: float = 30
    amqp_heartbeat_s: int = 10

    def __post_init__(self) -> None:
        if not (1 <= len(self.worker_id) <= 128):
            raise ValueError("worker id must be 1-128 characters")
        if self.accepted_after_s < 0:
            raise ValueError("accepted_after_s must be >= 0")
        if self.max_attempts is None:
            self.max_attempts = len(self.retry_delays_ms) + 1


class Names:
    """Exchange and queue names under a prefix (``topologyNames`` of @cdss/ai-jobs)."""

    def __init__(self, prefix: str, retry_delays_ms: tuple[int, ...]):
        self.work_exchange = f"{prefix}.work"
        self.work_queue = f"{prefix}.work.q"
        self.retry_queues = [f"{prefix}.retry.{ms}" for ms in retry_delays_ms]
        self.dead_exchange = f"{prefix}.dead"
        self.dead_queue = f"{prefix}.dead.q"
        self.events_exchange = f"{prefix}.events"
        self.events_queue = f"{prefix}.events.q"


def declare_topology(channel: Any, names: Names, retry_delays_ms: tuple[int, ...]) -> None:
    """Declares the topology exactly as ``AmqpTransport`` does (idempotent; a mismatch closes the channel)."""
    channel.exchange_declare(names.work_exchange, "direct", durable=True)
    channel.exchange_declare(names.dead_exchange, "fanout", durable=True)
    channel.exchange_declare(names.events_exchange, "topic", durable=True)
    channel.queue_declare(names.dead_queue, durable=True)
    channel.queue_bind(names.dead_queue, names.dead_exchange, "")
    channel.queue_declare(
        names.work_queue,
        durable=True,
        arguments={"x-max-priority": 10, "x-dead-letter-exchange": names.dead_exchange},
    )
    channel.queue_bind(names.work_queue, names.work_exchange, WORK_ROUTING_KEY)
    for delay, name in zip(retry_delays_ms, names.retry_queues):
        channel.queue_declare(
            name,
            durable=True,
            arguments={
                "x-message-ttl": delay,
                "x-dead-letter-exchange": names.work_exchange,
                "x-dead-letter-routing-key": WORK_ROUTING_KEY,
            },
        )
    channel.queue_declare(names.events_queue, durable=True, arguments={"x-dead-letter-exchange": names.dead_exchange})
    channel.queue_bind(names.events_queue, names.events_exchange, "job.#")


@dataclass
class Delivery:
    """A request as delivered: settle it once, on the channel it came on (and only while that channel lives)."""

    generation: int
    tag: int
    properties: pika.BasicProperties
    body: bytes
    redelivered: bool

    @property
    def attempt(self) -> int:
        return attempt_of(self.properties.headers)


class JobRun:
    """One job in this worker: its thread, its events' state, its timers (checked by the worker's loop)."""

    def __init__(self, worker: "JobWorker", delivery: Delivery, request: dict[str, Any]):
        self.worker = worker
        self.delivery = delivery
        self.request = request
        self.job_id: str = request["jobId"]
        self.attempt = delivery.attempt
        self.redelivered = delivery.redelivered
        self.stage = "fetch"
        self.percent = 0.0
        self.accepted = False
        self.acked = False
        now = time.monotonic()
        self.long_at = now + worker.long_after_s
        self.lease_at = now + worker.options.ack_timeout_s
        self.next_beat: float | None = None
        deadline = request.get("deadline")
        self.deadline_at = None if deadline is None else now + (_epoch(deadline) - time.time())
        self.stop_reason: str | None = None  # cancelled | deadline | stopping
        self.cancelled_by: str | None = None
        self.cancel_reason: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"job-{self.job_id[:8]}", daemon=True)

    # --- seen by the handler (its thread) ---

    def progress(self, stage: str, percent: float) -> None:
        self.worker._inbox.put(("progress", self, stage, max(0.0, min(100.0, float(percent)))))
        if self._stop.is_set():
            raise Stopped(self.stop_reason or "stopped")

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        try:
            outcome: tuple[str, Any] = ("ok", self.worker.handler(self))
        except BaseException as error:  # noqa: BLE001 -- every way out of the handler is reported
            outcome = ("error", error)
        self.worker._inbox.put(("done", self, *outcome))

    # --- the worker's loop ---

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class _ConnectionLost(Exception):
    pass


class JobWorker:
    """Consumes analysis requests and runs ``handler`` for each; see the module comment for the semantics."""

    def __init__(self, options: WorkerOptions, handler: JobHandler, webhooks: WebhookSender | None = None):
        self.options = options
        self.handler = handler
        #: also POSTs each event, signed, to the request's callbackUrl when one is set
        self.webhooks = webhooks
        self.names = Names(options.prefix, options.retry_delays_ms)
        self.long_after_s = min(options.accepted_after_s, options.heartbeat_s, options.ack_timeout_s)
        self._inbox: queue.Queue[tuple] = queue.Queue()
        self._running: dict[str, JobRun] = {}
        self._cancelled: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        #: jobs whose final event the broker confirmed: a later copy of their request is acknowledged, not run again
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._generation = 0
        self._connection: pika.BlockingConnection | None = None
        self._publisher: Any = None
        self._work: Any = None
        self._work_tag: str | None = None
        self._stopping = False
        self._stop_deadline: float | None = None
        self._closed = threading.Event()
        self.ready = threading.Event()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # --- lifecycle ---

    def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop (any thread, or a signal handler): no new requests; running jobs get ``grace_s``."""
        self._stopping = True
        self._stop_deadline = time.monotonic() + (self.options.grace_s if grace_s is None else grace_s)

    def run(self) -> None:
        """Runs until :meth:`stop` and every running job has ended. Reconnects with backoff on connection loss."""
        delay = 0.1
        while True:
            try:
                self._connect()
                delay = 0.1
                self._loop()
                return
            except (pika.exceptions.AMQPError, _ConnectionLost, OSError) as error:
                self._drop_connection()
                if self._stopping and not self._running:
                    return
                log.warning("amqp connection lost (%s); reconnecting in %.1f s", type(error).__name__, delay)
                self._wait_offline(delay * (0.8 + random.random() * 0.4))
                delay = min(delay * 2, 5.0)
            finally:
                if self._stopping and not self._running:
                    self._close()

    def _wait_offline(self, seconds: float) -> None:
        """While disconnected, jobs keep running; their messages wait in the inbox for the next connection."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _connect(self) -> None:
        params = pika.URLParameters(self.options.url)
        params.heartbeat = self.options.amqp_heartbeat_s
        params.client_properties = {"connection_name": f"{APP_ID} {self.options.worker_id}"}
        connection = pika.BlockingConnection(params)
        self._generation += 1
        generation = self._generation
        self._connection = connection
        publisher = connection.channel()
        declare_topology(publisher, self.names, self.options.retry_delays_ms)
        publisher.confirm_delivery()
        self._publisher = publisher
        control = connection.channel()
        control_queue = control.queue_declare("", exclusive=True, auto_delete=True, durable=False).method.queue
        control.queue_bind(control_queue, self.names.events_exchange, "control.#")
        control.basic_consume(control_queue, self._on_control, auto_ack=False)
        if not self._stopping:
            work = connection.channel()
            work.basic_qos(prefetch_count=max(1, self.options.prefetch))
            self._work_tag = work.basic_consume(
                self.names.work_queue,
                lambda ch, method, props, body: self._on_request(generation, method, props, body),
                auto_ack=False,
            )
            self._work = work
        log.info("amqp connected (generation %d, prefix %s)", generation, self.options.prefix)
        self.ready.set()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._publisher = self._work = self._work_tag = None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 -- already broken
                pass

    def _close(self) -> None:
        self._drop_connection()
        self._closed.set()

    # --- the loop ---

    def _loop(self) -> None:
        assert self._connection is not None
        while True:
            # what jobs reported while disconnected goes out before the broker redelivers their requests
            self._drain_inbox()
            self._tick()
            self._connection.process_data_events(time_limit=0.05)
            if self._stopping:
                if self._work is not None and self._work_tag is not None:
                    self._work.basic_cancel(self._work_tag)
                    self._work_tag = None
                if not self._running:
                    return
                if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                    for run in self._running.values():
                        run.stop("stopping")

    def _drain_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if item[0] == "progress":
                    _, run, stage, percent = item
                    if run.job_id in self._running and self._running[run.job_id] is run:
                        run.stage, run.percent = stage, percent
                        self._accept(run)
                        self._emit_progress(run)
                elif item[0] == "done":
                    self._finish(item[1], item[2], item[3])
            except (pika.exceptions.AMQPError, _ConnectionLost, OSError):
                # not published: put it back in front, it goes out after the reconnect
                rest = [item]
                while not self._inbox.empty():
                    rest.append(self._inbox.get_nowait())
                for again in rest:
                    self._inbox.put(again)
                raise

    def _tick(self) -> None:
        now = time.monotonic()
        for run in list(self._running.values()):
            if run.deadline_at is not None and now >= run.deadline_at:
                run.stop("deadline")
            if run.stop_reason is not None:
                continue
            if not run.accepted and now >= run.long_at:
                self._accept(run)
                if self.long_after_s > 0 and self.long_after_s == self.options.heartbeat_s:
                    self._emit_progress(run)  # the first heartbeat is due now
            if run.accepted and run.next_beat is not None and now >= run.next_beat:
                run.next_beat += self.options.heartbeat_s
                self._emit_progress(run)
            if not run.acked and now >= run.lease_at:
                log.info("long job %s: acknowledging early, heartbeats keep the lease", run.job_id)
                self._accept(run)
                self._ack(run.delivery)
                run.acked = True

    # --- events ---

    def _publish(self, exchange: str, key: str, body: bytes, properties: pika.BasicProperties) -> None:
        if self._publisher is None:
            raise _ConnectionLost("no publish channel")
        # a confirm channel: returns once the broker confirmed, raises if it refused
        self._publisher.basic_publish(exchange, key, body, properties)

    def _props(self, message: dict[str, Any]) -> pika.BasicProperties:
        return pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            message_id=message["messageId"],
            type=message["type"],
            correlation_id=message["jobId"],
            priority=0,
            app_id=APP_ID,
            timestamp=int(time.time()),
            headers={},
        )

    def _publish_event(self, message: dict[str, Any], request: dict[str, Any]) -> None:
        self._publish(
            self.names.events_exchange, routing_key(message["type"]), encode_message(message), self._props(message)
        )
        if self.webhooks is not None and request.get("callbackUrl"):
            # best effort beside the broker: the AMQP event is the durable path
            self.webhooks.submit(request["callbackUrl"], message)

    def _emit(self, request: dict[str, Any], type_: str, **fields: Any) -> None:
        self._publish_event(create_message(type_, request["jobId"], **fields), request)

    def _accept(self, run: JobRun) -> None:
        if run.accepted:
            return
        self._emit(run.request, "analysis.accepted", workerId=self.options.worker_id, attempt=run.attempt)
        run.accepted = True
        run.next_beat = time.monotonic() + self.options.heartbeat_s

    def _emit_progress(self, run: JobRun) -> None:
        self._emit(
            run.request,
            "analysis.progress",
            workerId=self.options.worker_id,
            stage=run.stage,
            percent=run.percent,
        )

    # --- settling deliveries ---

    def _live(self, delivery: Delivery) -> bool:
        return delivery.generation == self._generation and self._work is not None

    def _ack(self, delivery: Delivery) -> None:
        if self._live(delivery):
            self._work.basic_ack(delivery.tag)

    def _requeue(self, delivery: Delivery) -> None:
        if self._live(delivery):
            self._work.basic_nack(delivery.tag, requeue=True)

    def _copy_props(self, props: pika.BasicProperties, headers: dict[str, Any]) -> pika.BasicProperties:
        return pika.BasicProperties(
            delivery_mode=2,
            content_type=props.content_type,
            message_id=props.message_id,
            type=props.type,
            correlation_id=props.correlation_id,
            priority=props.priority,
            app_id=props.app_id,
            timestamp=props.timestamp,
            headers={**(props.headers or {}), **headers},
        )

    def _dead_letter(self, delivery: Delivery, reason: str, detail: str) -> None:
        log.warning("request %s dead-lettered: %s", delivery.properties.message_id, reason)
        self._publish(
            self.names.dead_exchange,
            "",
            delivery.body,
            self._copy_props(
                delivery.properties,
                {
                    DEAD_LETTER_REASON_HEADER: reason,
                    DEAD_LETTER_DETAIL_HEADER: detail[:500],
                    DEAD_LETTER_SOURCE_HEADER: self.names.work_queue,
                },
            ),
        )
        self._ack(delivery)

    def _retry(self, run: JobRun) -> None:
        index = max(0, min(run.attempt - 1, len(self.names.retry_queues) - 1))
        self._publish(
            "",
            self.names.retry_queues[index],
            run.delivery.body,
            self._copy_props(run.delivery.properties, {ATTEMPT_HEADER: run.attempt + 1}),
        )
        self._ack(run.delivery)

    def _settle(self, run: JobRun) -> None:
        if not run.acked:
            run.acked = True
            self._ack(run.delivery)

    # --- consumers ---

    def _on_control(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        decoded = decode_message(body)
        if not decoded.ok or decoded.message["type"] != "analysis.cancelled":
            return
        message = decoded.message
        job_id = message["jobId"]
        self._cancelled[job_id] = (message["cancelledBy"], message.get("reason"))
        if len(self._cancelled) > CANCELLED_MEMORY:
            self._cancelled.popitem(last=False)
        run = self._running.get(job_id)
        if run is not None and run.stop_reason is None:
            run.cancelled_by, run.cancel_reason = message["cancelledBy"], message.get("reason")
            run.stop("cancelled")

    def _on_request(self, generation: int, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        delivery = Delivery(generation, method.delivery_tag, props, body, bool(method.redelivered))
        if self._stopping:
            self._requeue(delivery)  # arrived while the consumer was being cancelled: for another worker
            return
        decoded = decode_message(body)
        if not decoded.ok:
            self._dead_letter(delivery, decoded.reason or "schema-invalid", decoded.detail)
            return
        request = decoded.message
        if request["type"] != "analysis.requested":
            self._dead_letter(delivery, "unexpected-type", f"work queue got {request['type']}")
            return
        job_id = request["jobId"]
        if job_id in self._running:
            self._ack(delivery)  # the same job twice here (a duplicate publish or a redelivery): the running copy reports
            return
        if job_id in self._finished:
            # a redelivery after a connection loss, a duplicate publish or a re-publication by the server's reap of a job
            # whose final event the broker has confirmed: the server has the outcome
            log.info("job %s already reported: request acknowledged", job_id)
            self._ack(delivery)
            return
        if job_id in self._cancelled:
            by, reason = self._cancelled[job_id]
            self._emit(request, "analysis.cancelled", cancelledBy=by, **({} if reason is None else {"reason": reason}))
            self._ack(delivery)
            return
        deadline = request.get("deadline")
        if deadline is not None and _epoch(deadline) <= time.time():
            self._emit(
                request,
                "analysis.failed",
                workerId=self.options.worker_id,
                attempt=delivery.attempt,
                reason="deadline-exceeded",
                retryable=False,
                detail="deadline passed before the job started",
            )
            self._ack(delivery)
            return
        run = JobRun(self, delivery, request)
        self._running[job_id] = run
        log.info("job %s started (attempt %d)", job_id, run.attempt)
        if self.long_after_s == 0:
            self._accept(run)
        run.thread.start()

    # --- the end of a job ---

    def _finish(self, run: JobRun, kind: str, value: Any) -> None:
        if self._running.get(run.job_id) is not run:
            return
        # a connection loss in here leaves the job in place: its "done" goes back to the inbox and is reported again
        # after the reconnect (a final event published twice is applied once by the server's store)
        if self._report(run, kind, value):
            self._finished[run.job_id] = None
            if len(self._finished) > CANCELLED_MEMORY:
                self._finished.popitem(last=False)
        del self._running[run.job_id]

    def _report(self, run: JobRun, kind: str, value: Any) -> bool:
        """Publishes the job's outcome and settles its request; True when that was a final event."""
        worker_id = self.options.worker_id
        if kind == "ok" and run.stop_reason is None:
            try:
                message = create_message(
                    "analysis.succeeded", run.job_id, workerId=worker_id, attempt=run.attempt, result=value
                )
            except ProtocolError as error:
                log.warning("job %s: the handler returned an invalid result: %s", run.job_id, error.issues[:5])
                value, kind = JobFailure("internal-error", "handler returned an invalid result"), "error"
            else:
                self._publish_event(message, run.request)
                self._settle(run)
                log.info("job %s succeeded", run.job_id)
                return True
        if run.stop_reason == "stopping":
            if not run.acked:
                self._requeue(run.delivery)
            return False
        if run.stop_reason == "cancelled":
            self._emit(
                run.request,
                "analysis.cancelled",
                cancelledBy=run.cancelled_by or "unknown",
                **({} if run.cancel_reason is None else {"reason": run.cancel_reason}),
            )
            self._settle(run)
            return True
        if run.stop_reason == "deadline":
            failure = JobFailure("deadline-exceeded", "deadline passed while running")
        elif isinstance(value, JobFailure):
            failure = value
        else:
            # the message stays in this process's log; the event carries only the error's type (a library's
            # message may quote data)
            log.warning("job %s: handler raised %s", run.job_id, type(value).__name__, exc_info=value)
            failure = JobFailure("internal-error", f"unexpected {type(value).__name__} in the job handler", True)
        if failure.retryable and not run.acked and run.attempt < (self.options.max_attempts or 1):
            log.info("job %s: retrying (attempt %d, %s)", run.job_id, run.attempt, failure.reason)
            self._retry(run)
            return False
        exhausted = failure.retryable and run.attempt >= (self.options.max_attempts or 1)
        self._emit(
            run.request,
            "analysis.failed",
            workerId=worker_id,
            attempt=run.attempt,
            reason=failure.reason,
            retryable=failure.retryable,
            detail=(f"{failure.detail} (after {run.attempt} attempts)" if exhausted else failure.detail)[:2000],
        )
        self._settle(run)
        log.info("job %s failed: %s", run.job_id, failure.reason)
        return True
