"""The cdss.ai-jobs protocol, version 1, in Python: every message in and out is checked against the JSON Schemas
that ``@cdss/ai-jobs`` publishes (``schema/v1/*.schema.json``), never against a copy of them.

JSON Schema leaves a few things to the validator that the TypeScript side (zod) decides differently; they are
aligned here so that Python accepts exactly what TypeScript accepts:

- ``pattern`` uses ECMAScript semantics (JSON Schema 2020-12 §6.3.3): ``$`` is the end of the string (Python's ``$``
  also matches before a final newline) and ``\\d`` is ASCII only (Python's matches any Unicode digit);
- JSON ``NaN``/``Infinity`` (which Python's ``json`` module reads and JavaScript's ``JSON.parse`` refuses) are
  malformed bodies; invalid UTF-8 is decoded with replacement characters, as Node's ``Buffer.toString`` does.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

PROTOCOL_NAME = "cdss.ai-jobs"
PROTOCOL_VERSION = 1
MESSAGE_TYPES = (
    "analysis.requested",
    "analysis.accepted",
    "analysis.progress",
    "analysis.succeeded",
    "analysis.failed",
    "analysis.cancelled",
)
STAGES = ("fetch", "preprocess", "inference", "postprocess", "store")
FAILURE_REASONS = (
    "invalid-request",
    "study-not-found",
    "series-missing",
    "unsupported-model",
    "input-fetch-failed",
    "preprocessing-failed",
    "inference-failed",
    "output-store-failed",
    "deadline-exceeded",
    "worker-lost",
    "retries-exhausted",
    "internal-error",
)

_REPO_ROOT = Path(__file__).resolve().parents[3]
#: Where the JSON Schemas are read from: ``CDSS_AI_JOBS_SCHEMA_DIR``, else the monorepo's copy (the npm package
#: ``@cdss/ai-jobs`` ships the same files under ``schema/v1/``).
SCHEMA_DIR = Path(os.environ.get("CDSS_AI_JOBS_SCHEMA_DIR", _REPO_ROOT / "packages/ai-jobs/schema/v1"))
#: The shared test vectors (``@cdss/ai-jobs/test-vectors/v1``).
VECTORS_DIR = Path(os.environ.get("CDSS_AI_JOBS_VECTORS_DIR", _REPO_ROOT / "packages/ai-jobs/test-vectors/v1"))


class ProtocolError(Exception):
    """A message we were about to send does not match the protocol (nothing was sent)."""

    def __init__(self, message: str, issues: list[str]):
        super().__init__(f"{message}: {'; '.join(issues)}")
        self.issues = issues


# --- ECMAScript-compatible keywords -------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """An ECMAScript (no flags) regular expression as a Python one: ``$`` outside classes → ``\\Z``, ASCII classes."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError("does not match the pattern")


_formats = FormatChecker()


@_formats.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    # an absolute URL with a host (what zod's z.url() requires); zod also limits callbackUrl to http(s), which the
    # generated JSON Schema does not carry, so that is checked in create_message/decode_message below
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc)


_EcmaValidator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _pattern})


@lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    _EcmaValidator.check_schema(schema)
    return _EcmaValidator(schema, format_checker=_formats)


def _issues(value: Any) -> list[str]:
    """PHI-free problems of a message: field paths and the keyword that failed, never values."""
    kind = value.get("type") if isinstance(value, dict) else None
    name = kind if isinstance(kind, str) and kind in MESSAGE_TYPES else "message"
    errors = sorted(_validator(name).iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    issues = [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.validator}" for e in errors]
    url = value.get("callbackUrl") if isinstance(value, dict) else None
    if name == "analysis.requested" and isinstance(url, str) and urlsplit(url).scheme not in ("http", "https"):
        issues.append("callbackUrl: protocol")
    return issues


def validate(value: Any) -> list[str]:
    """The problems of a message (empty when it is valid)."""
    return _issues(value)


# --- decoding -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """The outcome of :func:`decode_message`: ``message`` when ``ok``, else ``reason`` and a PHI-free ``detail``."""

    ok: bool
    message: dict[str, Any] | None = None
    #: ``malformed`` | ``unsupported-version`` | ``schema-invalid`` (also the dead-letter reason header's value)
    reason: str | None = None
    detail: str = ""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_message(body: bytes | str) -> Decoded:
    """Decodes and validates a message body. Never raises: a poison message must not stop a consumer."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        return Decoded(False, reason="malformed", detail=f"not JSON: {str(error)[:200]}")
    if isinstance(value, dict) and "version" in value and value.get("protocol") == PROTOCOL_NAME:
        version = value["version"]
        if isinstance(version, bool) or not isinstance(version, (int, float)) or version != PROTOCOL_VERSION:
            return Decoded(
                False,
                reason="unsupported-version",
                detail=f"unsupported protocol version {json.dumps(version)[:40]} (expected {PROTOCOL_VERSION})",
            )
    issues = _issues(value)
    if issues:
        return Decoded(False, reason="schema-invalid", detail="; ".join(issues[:5]))
    return Decoded(True, message=value)


# --- building -----------------------------------------------------------------------------------------------------


def iso_now(now: _dt.datetime | None = None) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, as JavaScript's ``Date.toISOString`` writes it."""
    moment = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_message(type_: str, job_id: str, **fields: Any) -> dict[str, Any]:
    """Builds a message (envelope filled in: protocol, version, a fresh messageId, sentAt) and validates it.

    :raises ProtocolError: when the message does not match the protocol
    """
    message = {
        "protocol": PROTOCOL_NAME,
        "version": PROTOCOL_VERSION,
        "messageId": str(uuid.uuid4()),
        "jobId": job_id,
        "sentAt": iso_now(),
        "type": type_,
        **fields,
    }
    issues = _issues(message)
    if issues:
        raise ProtocolError(f"invalid {type_} message", issues)
    return message


def encode_message(message: dict[str, Any]) -> bytes:
    """UTF-8 JSON of a message :func:`create_message` built (compact, as JSON.stringify writes it)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def routing_key(type_: str) -> str:
    """The events exchange routing key of an event type: ``analysis.succeeded`` → ``job.succeeded``."""
    return "job." + type_.split(".", 1)[1]
