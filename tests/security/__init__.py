"""Security regression matrix (issue #13, §11): one test per known vulnerability
class of this stack, each against the real stack (hub, proxy, lens service,
dask-gateway, user servers), never mocks.

| Class                                   | Module                         |
|-----------------------------------------|--------------------------------|
| Proxied websockets (CVE-2024-28179), Dask dashboards (HTTP too) | test_proxied_websockets.py |
| Non-GET service routes without XSRF     | test_xsrf.py                   |
| Usernames: case/confusables, system ids | test_usernames.py, test_oidc_usernames.py |
| Dask clusters across users              | test_dask_cross_user.py        |
| nbgitpuller links (CVE-2021-39160)      | (other modules of this folder) |
| Open redirects                          | (other modules of this folder) |
| Stored XSS in admin pages               | (other modules of this folder) |
| Leaks in errors and logs                | (other modules of this folder) |

Each module starts its own stack (``live_stack.running_stack``), so the folder
never holds two stacks at once. The older cross-user matrix (tests/dask,
tests/integration) stays.
"""
