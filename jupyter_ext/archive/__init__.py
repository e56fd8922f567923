"""lens archive engine. No Jupyter imports here: the CLI, the service and the magics share it.

Entry point: :class:`jupyter_ext.archive.engine.ArchiveEngine`; access is scoped by
:class:`jupyter_ext.archive.repository.Principal` and owner strings ``user:NAME`` /
``group:NAME``; errors are in :mod:`jupyter_ext.archive.errors`. Import from the
modules (this package imports nothing eagerly).
"""
