"""Ready clients for the DataLab's services, with the credentials LabHub issued to this notebook server.

LabHub gives every server its own short-lived accounts for the lab's MQTT broker, PostgreSQL and MongoDB and
delivers them twice: as environment variables (LABHUB_MQTT_URL, LABHUB_POSTGRES_URL, LABHUB_MONGODB_URL, ...) and
as the JSON file credentials.json in the directory LABHUB_SECRETS_DIR names. This module reads them (the file
first, the environment if there is no file) and returns connected clients:

    import labhub_datalab as lab
    for topic, payload in lab.sensors(limit=10): print(topic, payload)
    with lab.postgres() as conn: ...           # psycopg2, search_path = your schema, then the shared ones
    lab.sql("select * from shared.sensor_minute limit 5")   # the rows as a pandas DataFrame
    db = lab.mongo()[lab.credentials("mongodb")["database"]]

The accounts end when the server stops; restarting the server issues new ones.
"""

import json
import os
import queue
from urllib.parse import urlparse

__all__ = ["credentials", "sensors", "mqtt_client", "postgres", "sql", "mongo", "CredentialsMissing"]

_ENV = {
    "mqtt": {"url": "LABHUB_MQTT_URL", "username": "LABHUB_MQTT_USERNAME", "password": "LABHUB_MQTT_PASSWORD"},
    "postgres": {"url": "LABHUB_POSTGRES_URL", "username": "LABHUB_POSTGRES_USERNAME",
                 "password": "LABHUB_POSTGRES_PASSWORD", "schema": "LABHUB_POSTGRES_SCHEMA"},
    "mongodb": {"url": "LABHUB_MONGODB_URL", "username": "LABHUB_MONGODB_USERNAME",
                "password": "LABHUB_MONGODB_PASSWORD", "database": "LABHUB_MONGODB_DATABASE"},
}
_LISTS = {"mqtt": {"subscribe": "LABHUB_MQTT_SUBSCRIBE", "publish": "LABHUB_MQTT_PUBLISH"},
          "mongodb": {"read_databases": "LABHUB_MONGODB_READ_DATABASES"}}


class CredentialsMissing(RuntimeError):
    """This server has no credentials for the service (not configured on the hub, or the service was down)."""


def credentials(service):
    """The credentials of one service ("mqtt", "postgres" or "mongodb") as a dict; raises CredentialsMissing."""
    secrets_dir = os.environ.get("LABHUB_SECRETS_DIR")
    if secrets_dir:
        path = os.path.join(secrets_dir, "credentials.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                found = json.load(f).get(service)
            if found:
                return found
    names = _ENV.get(service)
    if names is None:
        raise ValueError("unknown service %r: expected one of %s" % (service, ", ".join(_ENV)))
    if not os.environ.get(names["url"]):
        raise CredentialsMissing("no %s credentials in this server; ask the hub's admin" % service)
    found = {key: os.environ.get(var, "") for key, var in names.items()}
    for key, var in _LISTS.get(service, {}).items():
        found[key] = [t for t in os.environ.get(var, "").split(",") if t]
    return found


def mqtt_client(**kwargs):
    """A connected paho-mqtt client logged in with this server's MQTT account (network loop not started)."""
    import paho.mqtt.client as mqtt

    creds = credentials("mqtt")
    url = urlparse(creds["url"])
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x wants the callback style named; 1.x has no such choice
        kwargs.setdefault("callback_api_version", mqtt.CallbackAPIVersion.VERSION2)
    client = mqtt.Client(**kwargs)
    client.username_pw_set(creds["username"], creds["password"])
    if url.scheme == "mqtts":
        client.tls_set()
    client.connect(url.hostname, url.port or (8883 if url.scheme == "mqtts" else 1883))
    return client


def sensors(topics=None, limit=None, timeout=None):
    """Yields (topic, payload bytes) from the lab's sensor topics (default: every topic this account may read).

    Stops after `limit` messages, or when no message came for `timeout` seconds; both default to never.
    """
    creds = credentials("mqtt")
    wanted = list(topics or creds.get("subscribe") or ["sensors/#"])
    received = queue.Queue()
    client = mqtt_client()
    client.on_message = lambda _c, _u, msg: received.put((msg.topic, msg.payload))
    for topic in wanted:
        client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        count = 0
        while limit is None or count < limit:
            try:
                yield received.get(timeout=timeout)
            except queue.Empty:
                return
            count += 1
    finally:
        client.loop_stop()
        client.disconnect()


def postgres(**kwargs):
    """A psycopg2 connection with this server's PostgreSQL account; its search_path starts with your own schema."""
    import psycopg2

    return psycopg2.connect(credentials("postgres")["url"], **kwargs)


def sql(query, params=None):
    """Runs one query with this server's PostgreSQL account and returns its rows as a pandas DataFrame."""
    import pandas as pd

    # A cursor rather than pandas.read_sql, which warns about connections that are not SQLAlchemy's.
    conn = postgres()
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return pd.DataFrame(cur.fetchall(), columns=[column[0] for column in cur.description])
    finally:
        conn.close()


def mongo(**kwargs):
    """A pymongo MongoClient with this server's MongoDB account; your own database is credentials("mongodb")["database"]."""
    import pymongo

    return pymongo.MongoClient(credentials("mongodb")["url"], **kwargs)
