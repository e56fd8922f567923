"""Sub-commands of the lens CLI, one module per area (see jupyter_ext.cli)."""
