"""The profile-update engine every front end shares: the model runtime (loaded once, on first use), the
worker that claims due users under a lease, renews it while it works and appends each new profile version,
and the settings of both. The service, `prefscribe worker` and `prefscribe batch --db` all run this one loop.

    from prefscribe.store import Store
    from prefscribe.updates import ModelRuntime, UpdateConfig, Worker

    config = UpdateConfig(model="embedded", update_every=1)
    worker = Worker(Store("sqlite:///profiles.db"), config, ModelRuntime(config.model))
    while worker.step():
        pass
"""

from ._config import UpdateConfig
from ._runtime import ModelRuntime
from ._worker import Worker

__all__ = ["ModelRuntime", "UpdateConfig", "Worker"]
