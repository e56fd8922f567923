"""Workshop and class hubs: bulk temporary accounts, expiry, seat budgets,
course content and instructors.

Pure logic lives in small modules (roster, sheet, roles, content, expiry,
seatcost); ``store`` keeps the workshop table in the lens database;
``ops`` is the thin I/O layer the ``lens workshop`` CLI uses (its hub calls go
through ``jupyter_ext.cli.hubapi``, over the shared ``jupyter_ext.clients``).
"""
