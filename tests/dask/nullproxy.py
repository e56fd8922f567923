"""A JupyterHub Proxy that only remembers routes: the gateway tests need the hub's
REST API and token checks, not HTTP proxying (the lead's full stack runs CHP)."""

from jupyterhub.proxy import Proxy


class NullProxy(Proxy):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._routes = {}

    async def start(self):
        pass

    async def stop(self):
        pass

    async def add_route(self, routespec, target, data):
        self._routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self._routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self._routes)
