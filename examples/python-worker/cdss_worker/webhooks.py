"""Signed webhooks, as ``@cdss/ai-jobs``' ``WebhookSender``: each event of a request that names a ``callbackUrl`` is
also POSTed there, best effort beside the broker (the AMQP event stays the durable path).

``CDSS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`` (one ``v1=`` per secret while
secrets rotate), ``CDSS-Event-Type`` and ``CDSS-Message-Id``; each attempt is signed afresh; network errors and
408/425/429/5xx are retried with exponential backoff and full jitter (honouring ``Retry-After``), up to
``max_attempts``; other statuses end the delivery at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

import requests

from .protocol import encode_message

log = logging.getLogger("cdss_worker.webhooks")
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


def sign_webhook(body: bytes, secrets: str | Sequence[str], timestamp: int | None = None) -> str:
    """The ``CDSS-Signature`` header value of a raw body.

    :raises ValueError: for a secret shorter than 16 characters
    """
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys or any(len(s) < 16 for s in keys):
        raise ValueError("webhook secrets must be at least 16 characters")
    t = int(time.time()) if timestamp is None else timestamp
    digests = [hmac.new(s.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest() for s in keys]
    return ",".join([f"t={t}", *(f"v1={d}" for d in digests)])


class WebhookSender:
    """Delivers events to callback URLs from a small thread pool, so a slow receiver never holds up the broker."""

    def __init__(
        self,
        secret: str | Sequence[str],
        max_attempts: int = 5,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        sign_webhook(b"", secret, 0)  # checks the secrets now
        self.secret = secret
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.session = requests.Session()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhook")

    def submit(self, url: str, message: dict[str, Any]) -> Future:
        """Delivers in the background; a failure is logged (job id and reason, never the body)."""
        future = self._pool.submit(self.deliver, url, message)
        future.add_done_callback(
            lambda f: f.exception()
            and log.warning("webhook delivery for job %s failed: %s", message["jobId"], type(f.exception()).__name__)
        )
        return future

    def deliver(self, url: str, message: dict[str, Any]) -> tuple[int, int]:
        """POSTs the message; returns (status, attempts).

        :raises requests.HTTPError: for a status retrying cannot fix, or the last one when attempts run out
        :raises requests.RequestException: the last network error when attempts run out
        """
        body = encode_message(message)
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            retry_after = 0.0
            try:
                response = self.session.post(
                    url,
                    data=body,
                    headers={
                        "content-type": "application/json",
                        "cdss-signature": sign_webhook(body, self.secret),
                        "cdss-event-type": message["type"],
                        "cdss-message-id": message["messageId"],
                    },
                    timeout=self.timeout_s,
                    allow_redirects=False,
                )
                if 200 <= response.status_code < 300:
                    return response.status_code, attempt
                error = requests.HTTPError(f"POST answered {response.status_code}", response=response)
                if response.status_code not in RETRYABLE:
                    raise error
                last = error
                header = response.headers.get("retry-after", "")
                if header.isdigit():
                    retry_after = float(header)
            except requests.HTTPError:
                raise
            except requests.RequestException as error:
                last = error
            if attempt < self.max_attempts:
                backoff = random.random() * min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
                self.sleep(min(self.max_delay_s, max(backoff, retry_after)))
        assert last is not None
        raise last

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
