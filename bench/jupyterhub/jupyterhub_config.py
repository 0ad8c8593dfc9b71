# JupyterHub 3.0 configuration for `npm run bench:hub` (bench/hub.ts): the anchor LabHub is compared with.
#
# Everything comes from environment variables that bench/hub.ts sets:
#   BENCH_JH_DIR        temp dir for the SQLite DB, cookie secret and CHP pid file
#   BENCH_JH_PORT       public port of configurable-http-proxy (127.0.0.1)
#   BENCH_JH_HUB_PORT   port of the hub itself (127.0.0.1)
#   BENCH_JH_API_PORT   port of CHP's REST API (127.0.0.1)
#   BENCH_JH_TOKEN      API token of the `bench` service (admin)
#   BENCH_JH_CHP        command of configurable-http-proxy (default /usr/bin/configurable-http-proxy)
#   BENCH_JH_PROXY_CMD  the proxy command as a JSON list, instead of BENCH_JH_CHP (tests run `labhub proxy` so)
# Debian's CHP needs NODE_PATH=/usr/share/nodejs; bench/hub.ts sets it in the hub's environment, which JupyterHub
# passes on to the proxy it starts.
import json
import os
import socket

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

import jupyterhub
from jupyterhub.spawner import Spawner

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

bench_dir = os.environ['BENCH_JH_DIR']
token = os.environ['BENCH_JH_TOKEN']


class _AnyGet(web.RequestHandler):
    """200 for any GET, with the header jupyterhub-singleuser sends (so the hub does not warn on every spawn)."""

    def get(self, *args):
        self.set_header('X-JupyterHub-Version', jupyterhub.__version__)
        self.set_header('Content-Type', 'application/json')
        self.finish('{"version": "instant"}')


_app = web.Application([(r'.*', _AnyGet)])


class InstantSpawner(Spawner):
    """A notebook server stand-in inside the hub's own process: start() binds a tornado HTTPServer on a free
    loopback port and returns its URL at once; poll() is None while it runs; stop() closes it. This mirrors
    LabHub's spawners/instant.ts, so both hubs spend the spawn time in their own lifecycle code only."""

    _http = None

    async def start(self):
        sockets = bind_sockets(0, '127.0.0.1', family=socket.AF_INET)
        port = sockets[0].getsockname()[1]
        self._http = HTTPServer(_app)
        self._http.add_sockets(sockets)
        return f'http://127.0.0.1:{port}'

    async def poll(self):
        return None if self._http is not None else 0

    async def stop(self, now=False):
        if self._http is not None:
            self._http.stop()
            self._http = None


c.JupyterHub.spawner_class = InstantSpawner
c.Spawner.poll_interval = 86400
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['BENCH_JH_PORT']}"
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = int(os.environ['BENCH_JH_HUB_PORT'])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['BENCH_JH_API_PORT']}"
c.ConfigurableHTTPProxy.command = (
    json.loads(os.environ['BENCH_JH_PROXY_CMD'])
    if 'BENCH_JH_PROXY_CMD' in os.environ
    else [os.environ.get('BENCH_JH_CHP', '/usr/bin/configurable-http-proxy')]
)
c.ConfigurableHTTPProxy.pid_file = os.path.join(bench_dir, 'jupyterhub-proxy.pid')
c.ConfigurableHTTPProxy.auth_token = os.environ.get('BENCH_JH_PROXY_TOKEN', token + '-proxy')

c.JupyterHub.db_url = 'sqlite:///' + os.path.join(bench_dir, 'jupyterhub.sqlite')
c.JupyterHub.cookie_secret_file = os.path.join(bench_dir, 'jupyterhub_cookie_secret')
c.JupyterHub.pid_file = os.path.join(bench_dir, 'jupyterhub.pid')

c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.services = [{'name': 'bench', 'api_token': token, 'admin': True}]
c.JupyterHub.load_roles = [
    {
        'name': 'bench-admin',
        'description': 'What bench/hub.ts needs: create users, tokens and start/stop servers',
        'scopes': ['admin:users', 'admin:servers', 'tokens', 'list:users', 'read:users', 'read:servers'],
        'services': ['bench'],
    },
]

# No throttling and no background sweeps during the measurements.
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.last_activity_interval = 86400
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
