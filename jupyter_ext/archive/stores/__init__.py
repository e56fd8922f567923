"""Object stores for archive repositories: a local directory (default) and S3.

``open.open_store(url)`` opens one; ``base.Store`` is the interface. Import from the
modules (this package imports nothing eagerly).
"""
