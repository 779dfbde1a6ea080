"""A Python client for the profile service (`prefscribe serve`): typed methods on httpx, sync and async.

    from prefscribe.client import Client
    with Client("http://localhost:8080", api_key=KEY) as client:
        client.add_interactions("u1", [{"chosen": "..."}])
        for version in client.versions("u1"):
            ...
"""

from ._client import AsyncClient, Client
from ._errors import (
    ApiError,
    AuthenticationError,
    Conflict,
    InvalidRequest,
    ModelFailed,
    ModelUnavailable,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnreachable,
)

__all__ = ["ApiError", "AsyncClient", "AuthenticationError", "Client", "Conflict", "InvalidRequest", "ModelFailed",
           "ModelUnavailable", "NotFound", "RateLimited", "ServerError", "ServiceUnreachable"]
