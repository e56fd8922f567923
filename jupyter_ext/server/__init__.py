"""Code that runs inside each user server: the jupyter_server extension, its
REST handlers, and the archive tasks it runs next to the user's files."""
