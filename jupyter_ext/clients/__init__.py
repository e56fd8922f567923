"""One HTTP client per peer (import from the submodules: ``base``, ``hub``, ``lens``,
``gateway``, ``outbox``): the hub API, the lens service, the Dask Gateway.

They share one set of rules (``base``): timeouts, retries of idempotent calls
only, quoted path parts, the token header and one error type, ``PeerError``.
``outbox`` keeps the calls that must not be lost (archive registrations,
metering events) until the peer has them.
"""
