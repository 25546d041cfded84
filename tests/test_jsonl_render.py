"""The JSON Lines renderer's fast paths give exactly the bytes of one orjson.dumps per record."""

from __future__ import annotations

import random

import orjson
import pytest

from kvtool.formats.jsonl import jsonl_renderer
from kvtool.formats.records import encoder

# Bytes that matter to JSON: escapes, controls, DEL, ASCII, UTF-8 (2-4 bytes, split or whole),
# invalid UTF-8, and the separators the templates use.
PIECES = [
    b"a",
    b"key:0001",
    b'"',
    b"\\",
    b"\n",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\xc3\xa9",
    b"\xc3",
    b"\xa9",
    b"\xe2\x80\xa8",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"%s",
    b'","value":"',
    b"",
]


def _field(rng: random.Random) -> bytes:
    if rng.random() < 0.7:  # most batches are all plain: they take the template path
        return b"p%d" % rng.randrange(10**6)
    return b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))


def _reference(batch: list[tuple[bytes, bytes]], keys_only: bool) -> bytes:
    auto = encoder("auto")
    if keys_only:
        return b"".join(orjson.dumps({"key": auto(k)}) + b"\n" for k, _ in batch)
    return b"".join(orjson.dumps({"key": auto(k), "value": auto(v)}) + b"\n" for k, v in batch)


@pytest.mark.parametrize("keys_only", [False, True], ids=["records", "keys"])
def test_fast_paths_match_orjson_per_record(keys_only: bool) -> None:
    rng = random.Random(5)
    render = jsonl_renderer(keys_only=keys_only)
    plain = 0
    for _ in range(3000):
        size = rng.choice([0, 1, 2, 7, 40])
        mixed = rng.random() < 0.5
        batch = [
            (_field(rng), _field(rng)) if mixed else (b"k%d" % i, b"v%d" % i) for i in range(size)
        ]
        plain += not mixed
        assert render(batch) == _reference(batch, keys_only), batch
    assert plain > 1000


def test_json_escapes_and_split_utf8_never_take_the_template() -> None:
    render = jsonl_renderer()
    # Together the two fields are valid UTF-8 (c3 a9 = "é"); alone each is not.
    assert render([(b"\xc3", b"\xa9")]) == (
        b'{"key":{"base64":"ww=="},"value":{"base64":"qQ=="}}\n'
    )
    assert render([(b'a"b', b"c\\d\x01")]) == b'{"key":"a\\"b","value":"c\\\\d\\u0001"}\n'


@pytest.mark.parametrize("keys_only", [False, True], ids=["records", "keys"])
@pytest.mark.parametrize(
    ("key_format", "value_format"),
    [("hex", "hex"), ("base64", "base64"), ("hex", "base64"), ("base64", "hex")],
)
def test_hex_and_base64_templates_match_orjson_per_record(
    key_format: str, value_format: str, keys_only: bool
) -> None:
    rng = random.Random(6)
    render = jsonl_renderer(key_format, value_format, keys_only=keys_only)
    ek, ev = encoder(key_format), encoder(value_format)
    for _ in range(500):
        batch = [(_field(rng), _field(rng)) for _ in range(rng.choice([0, 1, 3, 20]))]
        if keys_only:
            want = b"".join(orjson.dumps({"key": ek(k)}) + b"\n" for k, _ in batch)
        else:
            want = b"".join(orjson.dumps({"key": ek(k), "value": ev(v)}) + b"\n" for k, v in batch)
        assert render(batch) == want, batch
