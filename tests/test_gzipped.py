"""The endpoint's gzip: a head deflated once and a tail per response make one gzip
member that any inflater reads back as the whole text."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from agent.serve.gzipped import deflate
from agent.serve.gzipped import gzip as gzip_body

_RANDOM = random.Random(7)
_TEXT = [f'journey_runs_total{{journey="j{n}"}} {n}.0\n'.encode() for n in range(30_000)]

CASES = {
    "nothing": ([], b""),
    "no tail": (_TEXT, b""),
    "no head": ([], b"# EOF\n"),
    "small parts": (_TEXT, b"build_info 1.0\n# EOF\n"),
    "one large part": ([b"".join(_TEXT)], b"x 1.0\n"),
    "incompressible": ([_RANDOM.randbytes(300_000), b"", _RANDOM.randbytes(10)], b"\x00\xff"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_head_and_a_tail_make_one_member_any_inflater_reads_whole(case: str) -> None:
    parts, tail = CASES[case]
    whole = b"".join(parts) + tail
    body = b"".join(gzip_body(deflate(parts), tail))
    assert gzip.decompress(body) == whole
    inflater = zlib.decompressobj(31)  # one member: nothing may follow its trailer
    assert inflater.decompress(body) == whole
    assert inflater.eof
    assert inflater.unused_data == b""


def test_one_head_serves_many_tails() -> None:
    head = deflate(_TEXT)
    for tail in (b"a 1.0\n", b"a 2.0\n", b""):
        assert gzip.decompress(b"".join(gzip_body(head, tail))) == b"".join(_TEXT) + tail


def test_the_journey_text_shrinks_as_with_zlib() -> None:
    """Level 1 of ISA-L against zlib's level 1 on exposition text: about the same size."""
    text = b"".join(_TEXT)
    ours = len(b"".join(gzip_body(deflate(_TEXT), b"")))
    assert ours < 1.2 * len(gzip.compress(text, compresslevel=1, mtime=0))
