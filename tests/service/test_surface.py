"""The public names of the store and the service are exactly these."""

from prefscribe import service, store
from prefscribe.errors import PrefscribeError


def test_public_surface():
    assert sorted(store.__all__) == ["ConflictError", "DEFAULT_DB", "IngestResult", "KeyInfo", "NotFoundError",
                                     "Snapshot", "Store", "StoreError", "StoredInteraction", "TenantInfo",
                                     "UserState", "Version", "normalize_url"]
    assert sorted(service.__all__) == ["Settings", "Worker", "create_app"]
    for module in (store, service):
        for name in module.__all__:  # each resolves (a missing one raises) to prefscribe's own object
            assert getattr(getattr(module, name), "__module__", "prefscribe.").startswith("prefscribe."), name
    assert issubclass(store.NotFoundError, LookupError) and issubclass(store.StoreError, PrefscribeError)
