"""lens user-side package: the server extension, magics, widgets, the lens hub
service, and the domain engines (``atom``, ``costs``, ``archive``).

The engines import nothing from Jupyter; importing this package stays cheap.
"""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    from jupyter_ext.server.extension import LensExtension

    return [{"module": "jupyter_ext", "app": LensExtension}]


def load_ipython_extension(ipython):
    from jupyter_ext.kernel.magics import load_ipython_extension as _load

    _load(ipython)
