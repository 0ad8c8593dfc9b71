/**
 * How the DataLab services connect: MQTT 3.1.1 with a persistent session (fixed client id, clean: false), so
 * the broker keeps their subscriptions and queued QoS 1 messages while they are away, and MQTT.js resends what it
 * had in flight; reconnects every half second.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface MqttLogin {
  url: string;
  username: string;
  password: string;
  clientId: string;
}

/** The login from a service's settings (both services name them alike). */
export function loginFrom(settings: { MQTT_URL: string; MQTT_USERNAME: string; MQTT_PASSWORD: string; MQTT_CLIENT_ID: string }): MqttLogin {
  return { url: settings.MQTT_URL, username: settings.MQTT_USERNAME, password: settings.MQTT_PASSWORD, clientId: settings.MQTT_CLIENT_ID };
}

export function persistentClient(login: MqttLogin): MqttClient {
  return mqtt.connect(login.url, {
    clientId: login.clientId,
    username: login.username,
    password: login.password,
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 500,
    connectTimeout: 10_000,
    resubscribe: false,
  });
}

/**
 * Resolves on the first CONNACK; rejects (and gives up) if the first attempt fails, e.g. a refused login.
 * Errors after that (a broker going away) go to `onLaterError` while the client reconnects.
 */
export function firstConnect(client: MqttClient, login: MqttLogin, onLaterError: (err: Error) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      client.end(true);
      reject(new Error(`cannot connect to ${login.url} as ${login.username}: ${err.message}`));
    };
    client.once('error', onError);
    client.once('connect', () => {
      client.off('error', onError);
      client.on('error', onLaterError);
      resolve();
    });
  });
}
