"""lens's Dask Gateway integration.

- ``settings``: one Configurable holding every lens-specific gateway setting.
- ``options``: the cluster options schema (rendered as ipywidgets by the client).
- ``limits``: pure per-user resource accounting (cores, memory, clusters).
- ``budget``: the budget check against the lens service.
- ``backend`` / ``slurm``: dask-gateway backends (local as the user's unix
  account, unsafe local, Slurm) that apply all of the above.
- ``env``: the environment a user server needs for zero-config ``Gateway()``.
- ``lifecycle``: stop a user's clusters when their server stops.
- ``metering``: worker time -> usage intervals and live cost.
- ``widget``: the live cost in dask-gateway's cluster widget.
- ``import_hook``: applies ``widget`` and ``client_fix`` when a kernel first
  imports ``dask_gateway`` (kernels must not import it at start).

Nothing here imports Jupyter (jupyter_server, IPython, ipywidgets, tornado,
jupyterhub): the hub, the lens service and the CLI can all use it.
"""
