import type { CredentialsConfig } from '../config/schema.js';
import type { Store } from '../db/index.js';
import type { Logger } from '../log.js';
import { DynsecClient } from './dynsec-client.js';
import { MongoBroker, mongoAdmin, UNISOLATED_MONGODB_WARNING } from './mongodb.js';
import { MqttBroker } from './mqtt.js';
import { PostgresBroker } from './postgres.js';
import { CredentialService, type ConfiguredBroker } from './service.js';
import { withoutCredentials } from './urls.js';

/** The brokers the `credentials` config names, and the lease service over them. */
export function createCredentialService(config: CredentialsConfig, store: Store, log: Logger): CredentialService {
  const timeoutMs = config.timeout * 1000;
  const brokers: ConfiguredBroker[] = [];
  if (config.mqtt) {
    const admin = new URL(config.mqtt.admin_url);
    const dynsec = new DynsecClient({
      url: withoutCredentials(config.mqtt.admin_url), username: decodeURIComponent(admin.username),
      password: decodeURIComponent(admin.password), timeoutMs,
    });
    brokers.push({ broker: new MqttBroker(dynsec, { connectUrl: config.mqtt.connect_url ?? withoutCredentials(config.mqtt.admin_url) }), required: config.mqtt.required });
  }
  if (config.postgres) {
    brokers.push({
      broker: new PostgresBroker({ adminUrl: config.postgres.admin_url, connectUrl: config.postgres.connect_url ?? withoutCredentials(config.postgres.admin_url), timeoutMs }),
      required: config.postgres.required,
    });
  }
  if (config.mongodb) {
    brokers.push({
      broker: new MongoBroker(mongoAdmin(config.mongodb.admin_url, timeoutMs), {
        connectUrl: config.mongodb.connect_url ?? withoutCredentials(config.mongodb.admin_url), authorization: config.mongodb.authorization,
      }),
      required: config.mongodb.required,
    });
    if (config.mongodb.authorization === 'none') log.warn(UNISOLATED_MONGODB_WARNING);
  }
  return new CredentialService({ store, log: log.child({ component: 'credentials' }) }, brokers, {
    ttlMs: config.ttl * 1000, sweepIntervalMs: config.sweep_interval * 1000, defaults: config.policy,
  });
}
