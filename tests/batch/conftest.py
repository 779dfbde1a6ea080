from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("ray", reason="the batch tests need the batch extra: pip install 'prefscribe[batch]'")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for every batch test (starting one takes seconds): 2 CPUs, as the issue asks."""
    import ray

    # Ray's workers inherit this environment when the cluster starts.
    os.environ.setdefault("PREFSCRIBE_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def dots_model(tiny_model_dir, tmp_path_factory):
    """The tiny random model rewired to write '.' (tests/service): a reply that always parses."""
    from tests.service.test_tiny_model import _model_that_writes_dots

    return _model_that_writes_dots(tiny_model_dir, tmp_path_factory.mktemp("dots") / "model")


def write_logs(path, users: int, per_user: int, *, start: float = 1000.0, bad: bool = False) -> None:
    """Interaction rows of `users` users, interleaved in time, optionally with two bad rows."""
    lines = []
    for t in range(per_user):
        for u in range(users):
            lines.append(json.dumps({"user_id": f"u{u:02d}", "timestamp": start + 10 * t + u,
                                     "context": "Recommend a movie." if t % 2 else None,
                                     "chosen": f"Science fiction film {u}-{t}.",
                                     "rejected": "A thoughtful drama." if u % 2 else None}))
    if bad:
        lines.insert(3, "{broken")
        lines.append(json.dumps({"user_id": "u99", "timestamp": 1.0}))
    path.write_text("\n".join(lines) + "\n")
