"""lens atom engine. No Jupyter imports here: the CLI, the service and the magics share it."""
