# Installed into <prefix>/etc/ipython by lens-hub: every kernel of this
# environment loads the lens magics (%atom, %costs, %archive) with no %load_ext.
c = get_config()  # noqa: F821
extensions = list(c.InteractiveShellApp.extensions or [])
if "jupyter_ext.magics" not in extensions:
    extensions.append("jupyter_ext.magics")
c.InteractiveShellApp.extensions = extensions
