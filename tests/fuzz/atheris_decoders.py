"""Coverage-guided fuzzing of every input topic's decoder and of the dead letter it leads to.

The contract: ``TopicDecoder.decode`` never raises and never answers ``internal`` (that code
means a decoder bug); every failure becomes a dead letter that encodes to less than
``DEADLETTER_MAX_BYTES`` and decodes back to itself. Run by ``scripts/fuzz`` from
``.leitstand/fuzz/atheris_decoders/`` (libFuzzer arguments: corpus dir, ``-max_total_time``...).
The first input byte picks the topic, the second whether a key is sent, the rest is the value;
a repeat count lets small inputs reach the size limits.
"""

from __future__ import annotations

import sys
import time

import atheris

with atheris.instrument_imports():
    import msgspec

    from streams.codec import DEADLETTER_MAX_BYTES, DecodeFailure, RawMessage, dead_letter, decoder_for
    from streams.records import INPUT_RECORDS, DeadLetter, encode

TOPICS = sorted(INPUT_RECORDS)
DECODERS = {t: decoder_for(t, reference="stream") for t in TOPICS}
NOW = time.time()


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    topic = TOPICS[fdp.ConsumeIntInRange(0, len(TOPICS) - 1)]
    key = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80)) if fdp.ConsumeBool() else None
    repeat = fdp.ConsumeIntInRange(1, 4) ** 8  # 1, 256, 6561 or 65536 copies of the tail
    value = fdp.ConsumeBytes(fdp.remaining_bytes())
    if repeat > 1 and len(value) * repeat <= 2_100_000:
        value = value * repeat
    out = DECODERS[topic].decode(value, now=NOW, key=key)
    if isinstance(out, DecodeFailure):
        if out.code == "internal":
            raise AssertionError(f"decoder bug on {topic}: {out.reason}")
        failure = out
    else:
        failure = DecodeFailure("internal", "fuzz")
        assert DECODERS[topic].decode(encode(out), now=NOW) == out, "a decoded record does not round-trip"
    dl = dead_letter(RawMessage(topic, 0, 1, key, value), failure, NOW)
    wire = encode(dl)
    if len(wire) >= DEADLETTER_MAX_BYTES:
        raise AssertionError(f"dead letter of {len(wire)} bytes for a {len(value)}-byte value")
    if msgspec.json.decode(wire, type=DeadLetter) != dl:
        raise AssertionError("dead letter does not decode back to itself")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
