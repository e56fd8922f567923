"""The lens hub service: jobs broker, ledger and budgets, archive catalog, admin UI."""
