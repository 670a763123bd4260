"""NET_CLONES: a pool of copies of each cv2 net gives the same answers as one net under a lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from handler.config import SETTINGS
from handler.models import LoadedNet, read_manifest


def test_pool_answers_concurrent_forwards_like_one_net() -> None:
    spec = read_manifest(SETTINGS.model_dir)["gender"]
    single, pool = LoadedNet(spec), LoadedNet(spec, clones=3)
    pool.warm()
    assert len(pool._nets) == 3 and len(single._nets) == 1
    width, height = spec.input_size
    rng = np.random.default_rng(0)
    blobs = [rng.random((1, 3, height, width), np.float32) for _ in range(12)]
    expected = [single.forward(b) for b in blobs]
    with ThreadPoolExecutor(6) as threads:
        got = list(threads.map(pool.forward, blobs * 4))
    for i, out in enumerate(got):
        np.testing.assert_allclose(out, expected[i % len(blobs)], rtol=1e-5, atol=1e-6)
    assert pool._free.qsize() == 3  # every copy was given back
