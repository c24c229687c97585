"""The shared protocol test vectors of @cdss/ai-jobs (test-vectors/v1), run through the Python decoder: every valid
vector is accepted unchanged, every invalid one refused with its reason (among them the places where Python's json
and re modules differ from JavaScript's: NaN, a final newline, non-ASCII digits). Also what vectors cannot say."""

import json

import pytest

from cdss_worker.protocol import (
    VECTORS_DIR,
    ProtocolError,
    create_message,
    decode_message,
    encode_message,
    routing_key,
)

VALID = sorted((VECTORS_DIR / "valid").glob("*.json"))
INVALID = sorted((VECTORS_DIR / "invalid").glob("*.json"))


def test_the_vectors_are_there():
    assert len(VALID) >= 6 and len(INVALID) >= 10, f"no vectors under {VECTORS_DIR}"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_vector_is_accepted(path):
    vector = json.loads(path.read_text("utf-8"))
    assert vector["valid"] is True
    decoded = decode_message(json.dumps(vector["message"]).encode("utf-8"))
    assert decoded.ok, decoded.detail
    assert decoded.message == vector["message"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_vector_is_refused_with_its_reason(path):
    vector = json.loads(path.read_text("utf-8"))
    assert vector["valid"] is False
    body = vector["raw"] if "raw" in vector else json.dumps(vector["message"])
    decoded = decode_message(body.encode("utf-8"))
    assert not decoded.ok
    assert decoded.reason == vector["reason"]
    # the detail names fields and keywords, never values (it goes into dead-letter headers and logs)
    if "message" in vector and isinstance(vector["message"], dict):
        for value in ("Patient/42", "user-17", "2026-11-26 06:00:00"):
            assert value not in decoded.detail


def _requested(**changes):
    message = json.loads((VECTORS_DIR / "valid" / "analysis.requested.json").read_text("utf-8"))["message"]
    message.update(changes)
    return message


@pytest.mark.parametrize("version", [True, "1", 2, None])
def test_another_version_is_unsupported(version):
    assert decode_message(json.dumps(_requested(version=version))).reason == "unsupported-version"


def test_invalid_utf8_is_decoded_with_replacement_like_node():
    body = json.dumps(_requested(requestedBy="user-\x00")).encode("utf-8").replace(b"\\u0000", b"\xff")
    decoded = decode_message(body)
    assert decoded.ok and decoded.message["requestedBy"] == "user-\ufffd"


def test_created_messages_validate_and_round_trip():
    message = create_message(
        "analysis.progress",
        "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70",
        workerId="py-worker-1",
        stage="inference",
        percent=42.5,
    )
    assert message["sentAt"].endswith("Z") and len(message["sentAt"]) == 24
    assert decode_message(encode_message(message)).message == message
    assert routing_key(message["type"]) == "job.progress"


def test_an_invalid_outgoing_message_is_never_built():
    with pytest.raises(ProtocolError) as raised:
        create_message("analysis.progress", "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70", workerId="w", stage="x", percent=1)
    assert raised.value.issues == ["stage: enum"]


def test_string_lengths_count_code_points_as_zod_does():
    # 100 emoji: 100 code points (200 UTF-16 code units, 400 UTF-8 bytes), within maxLength 128 for zod and JSON Schema
    assert decode_message(json.dumps(_requested(idempotencyKey="\U0001f600" * 100))).ok
    assert decode_message(json.dumps(_requested(idempotencyKey="\U0001f600" * 129))).reason == "schema-invalid"
