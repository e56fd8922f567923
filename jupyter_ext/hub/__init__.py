"""Hub-side pieces: the password authenticator and its account store."""
