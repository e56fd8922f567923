"""The ``lens`` command: ``main`` dispatches, one module per command group."""
