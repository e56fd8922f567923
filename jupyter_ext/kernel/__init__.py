"""Code that runs inside each kernel: the magics, widgets, the client that talks
to the server extension, and the post-import hooks for dask_gateway."""
