"""`content_hash` keeps every fingerprint the hand-written sha256 sites made, and `read_marker` reads
a `.completed` marker or says there is none."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from slmscale.config import fingerprint
from slmscale.files import MARKER, content_hash, is_completed, mark_completed, read_marker


def _old(data: bytes) -> str:
    """The expression every site spelt out before content_hash."""
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize("parts, data", [
    ((), b""),
    (("abc",), b"abc"),
    (("héllo wörld\n",), "héllo wörld\n".encode()),
    ((b"\x00\xffbytes",), b"\x00\xffbytes"),
    # Parts are joined with nothing between them, as the sites that hashed a concatenation or fed
    # one digest several updates did (results + fit fingerprint, centroids + config repr, index files).
    ((b"table,rows\n", "0123456789abcdef"), b"table,rows\n0123456789abcdef"),
    (("tok|dedup=True\n", "train\ta\t/x.wav\n", "dev\tb\t/y.wav\n"),
     b"tok|dedup=True\ntrain\ta\t/x.wav\ndev\tb\t/y.wav\n"),
])
def test_content_hash_is_the_old_16_digit_sha256(parts, data):
    assert content_hash(*parts) == _old(data)
    assert len(content_hash(*parts)) == 16


def test_content_hash_of_centroids_and_config_fingerprint_keep_their_values():
    centroids = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert content_hash(centroids.tobytes(), "{'k': 3}") == _old(centroids.tobytes() + b"{'k': 3}")
    config = {"size": "tiny-L1", "tokens": 2000, "names": ["ü", None]}
    assert fingerprint(config) == _old(json.dumps(config, sort_keys=True).encode())


def test_read_marker_missing_corrupt_and_valid(tmp_path):
    assert read_marker(tmp_path / "absent") is None
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_text('{"fingerprint": ')
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_bytes(b"\xff\xfe not text")
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_text('["a list, not an object"]')
    assert read_marker(tmp_path) is None and not is_completed(tmp_path, "abc")
    mark_completed(tmp_path, "abc", stage="test", items=3)
    assert read_marker(tmp_path) == {"fingerprint": "abc", "stage": "test", "items": 3}
    assert is_completed(tmp_path, "abc") and not is_completed(tmp_path, "xyz") and is_completed(tmp_path)
