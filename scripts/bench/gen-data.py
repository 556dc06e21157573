#!/usr/bin/env python3
"""gen-data.py DIR — the benchmark data set, made once and reused.

DIR/big.bin   1 GiB of pseudo-random bytes
DIR/tree/     20,000 files of 1 KiB–1 MiB (95% 1–8 KiB, 4.5% 8–128 KiB,
              0.5% 128 KiB–1 MiB: about 200 MB, like a build output tree)
The contents are deterministic (seeded), so runs on different days compare.
"""
import os, random, sys

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = random.Random(20261126)
marker = os.path.join(d, ".complete")
if os.path.exists(marker):
    sys.exit(0)

def blob(n):
    return rng.randbytes(n)

big = os.path.join(d, "big.bin")
with open(big, "wb") as f:
    chunk = blob(1 << 20)
    for i in range(1024):
        # Vary each MiB cheaply so no two chunks are equal.
        f.write(i.to_bytes(8, "little") + chunk[8:])
tree = os.path.join(d, "tree")
pool = blob(1 << 20)
for i in range(20000):
    u = rng.random()
    if u < 0.95:
        n = rng.randint(1 << 10, 8 << 10)
    elif u < 0.995:
        n = rng.randint(8 << 10, 128 << 10)
    else:
        n = rng.randint(128 << 10, 1 << 20)
    sub = os.path.join(tree, "d%02d" % (i % 50), "e%02d" % (i % 7))
    os.makedirs(sub, exist_ok=True)
    off = rng.randint(0, (1 << 20) - n)
    with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
        f.write(i.to_bytes(8, "little") + pool[off + 8:off + n])
open(marker, "w").close()
