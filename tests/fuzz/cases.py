"""The fuzz suite's inputs: valid seeds of every kind, a mutator, and the case count.

Each hypothesis example hands a seed to ``Mutator``, which derives a batch of
inputs from it: hypothesis chooses and shrinks the seed, the batch keeps the
cost per case in microseconds, so 100 000+ cases fit in about a minute of CI.
``feed`` runs one target over a batch and fails with the exact input when the
target raises anything but the typed errors it may raise.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Callable, Iterable

CASES: Counter[str] = Counter()  # target -> inputs fed; reported at the end of the session

# Byte strings that often sit on decoders' edges: Avro zig-zag varints for huge,
# negative and zero lengths, the single-object magic, zip and YAML/SQL syntax.
_INTERESTING = [
    b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80\x01", b"\xff\xff\xff\xff\x0f", b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\xc3\x01", b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06",
    b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\xff",
]
_TEXT_TOKENS = [
    b"\n", b": ", b"- ", b"[", b"]", b"{", b"}", b"&a ", b"*a", b"!!binary ", b"!!python/object:os.system ", b"'",
    b'"', b"`", b"#", b"--", b";", b"(", b")", b",", b"=", b"|", b">", b"? ", b"<<: ", b"\t", b"\\", b"%YAML 1.1\n",
    b"---\n", b"...\n", b"99999999999999999999999999", b"-1", b"null", b"~", b"true", b".inf", b"CREATE", b"FUNCTION",
    b"WITH", b"DROP", b"IF EXISTS", b"SHOW", b"FUNCTIONS", b"\x00", b"\xe2\x80\xae", b"\xff",
]


class Mutator:
    """Derives inputs from valid seeds: flips, cuts, inserts, splices and repeats."""

    def __init__(self, seed: int, seeds: list[bytes], text: bool = False):
        self.rng = random.Random(seed)
        self.seeds = seeds
        self.tokens = _TEXT_TOKENS if text else _INTERESTING

    def one(self) -> bytes:
        r = self.rng
        data = bytearray(r.choice(self.seeds))
        for _ in range(r.choice((1, 1, 2, 3, 5, 8))):
            n = len(data)
            op = r.randrange(9)
            i = r.randrange(n + 1)
            if op == 0 and n:  # flip a bit
                data[min(i, n - 1)] ^= 1 << r.randrange(8)
            elif op == 1 and n:  # a random byte
                data[min(i, n - 1)] = r.randrange(256)
            elif op == 2:  # cut a run
                del data[i:i + r.randint(1, 16)]
            elif op == 3:  # truncate
                del data[i:]
            elif op == 4:  # insert an interesting token
                data[i:i] = r.choice(self.tokens)
            elif op == 5 and n:  # duplicate a slice somewhere else
                j = r.randrange(n)
                data[i:i] = data[j:j + r.randint(1, 64)]
            elif op == 6:  # splice in another seed's tail
                other = r.choice(self.seeds)
                data[i:] = other[r.randrange(len(other) + 1):]
            elif op == 7:  # random bytes
                data[i:i] = r.randbytes(r.randint(1, 8))
            elif op == 8 and n:  # repeat a slice many times (length fields vs. actual length)
                j = r.randrange(n)
                data[i:i] = bytes(data[j:j + r.randint(1, 4)]) * r.randint(2, 200)
        return bytes(data)

    def batch(self, n: int) -> list[bytes]:
        return [self.one() for _ in range(n)]


def feed(target: str, run: Callable[[bytes], object], inputs: Iterable[bytes],
         allowed: tuple[type[BaseException], ...]) -> None:
    """Run ``run`` on every input: it returns, or raises one of ``allowed`` with a message."""
    for data in inputs:
        CASES[target] += 1
        try:
            run(data)
        except allowed as exc:
            assert str(exc).strip(), f"{target}: {type(exc).__name__} with an empty message for {data!r:.300}"
        except Exception as exc:  # noqa: BLE001 - precisely what the suite looks for
            raise AssertionError(f"{target}: {type(exc).__name__}: {exc} for input {data!r:.2000}") from exc
