"""The public names of the store and the service are exactly these (the update engine's: tests/test_surface.py)."""

from prefscribe import errors, service, store
from prefscribe.errors import PrefscribeError


def test_public_surface():
    assert sorted(store.__all__) == ["ConflictError", "DEFAULT_DB", "IngestResult", "KeyInfo", "NotFoundError",
                                     "Snapshot", "Store", "StoreError", "StoredInteraction", "TenantInfo",
                                     "UserState", "Version", "normalize_url"]
    assert sorted(service.__all__) == ["Settings", "create_app"]
    for module in (store, service):
        for name in module.__all__:  # each resolves (a missing one raises) to prefscribe's own object
            assert getattr(getattr(module, name), "__module__", "prefscribe.").startswith("prefscribe."), name
    assert issubclass(store.NotFoundError, LookupError) and issubclass(store.StoreError, PrefscribeError)
    # the store's errors are the package's own, so one handler maps them in the service
    assert store.NotFoundError is errors.NotFoundError and store.ConflictError is errors.ConflictError
    for typed in (errors.UserNotFoundError, errors.VersionNotFoundError):
        assert issubclass(typed, errors.NotFoundError)
