"""lens's configuration files. Configuration only, no logic: this folder ships
in the wheel as package data, so an installed lens finds its defaults here
(see ``jupyter_ext.paths``)."""
