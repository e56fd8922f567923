"""Job backends with one interface (``base.Backend``): submit, batched status, cancel,
logs, list. ``local``, ``slurm`` and ``batch`` implement it; ``make_backend`` builds one
by name. Import from the modules (this package imports nothing eagerly).
"""
