"""LabHub's idle warning inside JupyterLab and Notebook 7: the server side (docs/idle-culling.md).

`GET <base_url>labhub/idle` answers the hub's idle state of this server, and `POST` reports activity for it first
(the warning's *Keep it running*). Both ask the hub with this server's own API token, so the page needs neither the
hub's cookie nor its XSRF token (which pages under /user/ must never be able to use), and only the people this server
lets in can ask. The browser side is the `labhub-idle` JupyterLab extension installed beside this package.
"""
import json
import os
from datetime import datetime, timezone
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

# JupyterHub's variables for talking to the hub over internal_ssl, and the tornado request options they fill.
_TLS_ENV = {"client_cert": "JUPYTERHUB_SSL_CERTFILE", "client_key": "JUPYTERHUB_SSL_KEYFILE", "ca_certs": "JUPYTERHUB_SSL_CLIENT_CA"}


def _jupyter_server_extension_points():
    return [{"module": "labhub_idle"}]


def _hub_request(path, method="GET", body=None):
    tls = {option: os.environ[name] for option, name in _TLS_ENV.items() if os.environ.get(name)}
    return HTTPRequest(
        os.environ["JUPYTERHUB_API_URL"].rstrip("/") + path,
        method=method,
        body=body,
        headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"], "Content-Type": "application/json"},
        request_timeout=10,
        **tls,
    )


def _user_path():
    return "/users/" + quote(os.environ["JUPYTERHUB_USER"], safe="")


def _server_name():
    return os.environ.get("JUPYTERHUB_SERVER_NAME", "")


def _idle_path():
    name = _server_name()
    return _user_path() + ("/servers/" + quote(name, safe="") + "/idle" if name else "/server/idle")


def _now():
    return datetime.now(timezone.utc)


class IdleHandler(APIHandler):
    # Asking must not count as activity, or every open tab would keep its server alive for ever.
    _track_activity = False

    @web.authenticated
    async def get(self):
        await self._relay(_hub_request(_idle_path()))

    @web.authenticated
    async def post(self):
        now = _now()
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        report = {"last_activity": stamp, "servers": {_server_name(): {"last_activity": stamp}}}
        if await self._relay(_hub_request(_user_path() + "/activity", "POST", json.dumps(report)), answer=False):
            # The server's own next report must not say it was idle since before the click.
            self.settings["api_last_activity"] = now
            await self._relay(_hub_request(_idle_path()))

    async def _relay(self, request, answer=True):
        """Sends `request` to the hub; answers its reply (or, with `answer=False`, only an error). True on success."""
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as err:
            status = err.code if 400 <= err.code < 500 else 502
            self.set_status(status)
            self.finish({"status": status, "message": "The hub answered %d about this server's idle state." % err.code})
            return False
        except OSError as err:
            self.log.warning("labhub_idle: the hub is unreachable: %s", err)
            self.set_status(502)
            self.finish({"status": 502, "message": "The hub cannot be reached."})
            return False
        if answer:
            self.set_header("Content-Type", "application/json")
            self.finish(response.body)
        return True


def _load_jupyter_server_extension(serverapp):
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        serverapp.log.info("labhub_idle: not under a hub, so no idle warnings")
        return
    route = url_path_join(serverapp.web_app.settings["base_url"], "labhub", "idle")
    serverapp.web_app.add_handlers(".*$", [(route, IdleHandler)])
