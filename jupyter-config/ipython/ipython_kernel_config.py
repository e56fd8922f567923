# Installed into <prefix>/etc/ipython by lens-hub: every kernel of this
# environment loads the lens magics (%atom, %costs, %archive) with no %load_ext.
c = get_config()  # noqa: F821
# .append on the lazy config value keeps extensions other configs add.
c.InteractiveShellApp.extensions.append("jupyter_ext.kernel.magics")
