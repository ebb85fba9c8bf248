"""What fetching by name costs: a file served on the loopback address through
``$JAXBRAIN_MIRROR``, fetched once (download, checksum, rename) and then re-used (the
checksum of every use), beside the raw sha1 of the same bytes in memory (the floor).

    .venv/bin/python -m experiments.bench_fetch --size_mib=250
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

flags.DEFINE_integer("size_mib", 250, "Size of the served file.")
flags.DEFINE_integer("port", 8765, "Loopback port of the stand-in server.")
flags.DEFINE_integer("repeats", 3, "Re-uses timed.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    root = Path(tempfile.mkdtemp(prefix="jaxbrain-bench-fetch-"))
    served = root / "served" / "host.example" / "data"
    served.mkdir(parents=True)
    blob = os.urandom(FLAGS.size_mib * 2**20)
    (served / "big.nc").write_bytes(blob)
    catalog = root / "catalog.json"
    catalog.write_text(json.dumps({"entries": [{
        "identifier": "big", "kind": "assembly", "files": {"assembly": {
            "url": "https://host.example/data/big.nc",
            "checksum": "sha1:" + hashlib.sha1(blob).hexdigest()}}}]}))
    os.environ.update(JAXBRAIN_HOME=str(root / "home"),
                      JAXBRAIN_MIRROR=f"http://127.0.0.1:{FLAGS.port}")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(FLAGS.port), "--bind", "127.0.0.1"],
        cwd=root / "served", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        from jaxbrain.data import fetch

        start = time.perf_counter()
        fetch("big", catalog, progress=False)
        first = time.perf_counter() - start
        reuse = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            fetch("big", catalog)
            reuse.append(time.perf_counter() - start)
    finally:
        server.terminate()
    start = time.perf_counter()
    hashlib.sha1(blob).hexdigest()
    floor = time.perf_counter() - start
    print(f"{FLAGS.size_mib} MiB: first fetch {first:.2f} s; re-use {min(reuse):.2f}-"
          f"{max(reuse):.2f} s (verification); sha1 in memory {floor:.2f} s; "
          f"re-use / floor {min(reuse) / floor:.2f}x")


if __name__ == "__main__":
    app.run(main)
