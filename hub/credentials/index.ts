import type { CredentialsConfig } from '../config/schema.js';
import type { Store } from '../db/index.js';
import type { Logger } from '../log.js';
import { UNISOLATED_MONGODB_WARNING } from './mongodb-warning.js';
import { CredentialService, type ConfiguredBroker } from './service.js';
import { withoutCredentials } from './urls.js';

/**
 * The brokers the `credentials` config names, and the lease service over them. Each broker's client library is
 * loaded only when it is configured: together they added a third of a second to every start-up.
 */
export async function createCredentialService(config: CredentialsConfig, store: Store, log: Logger): Promise<CredentialService> {
  const timeoutMs = config.timeout * 1000;
  const brokers: ConfiguredBroker[] = [];
  if (config.mqtt) {
    const [{ DynsecClient }, { MqttBroker }] = await Promise.all([import('./dynsec-client.js'), import('./mqtt.js')]);
    const admin = new URL(config.mqtt.admin_url);
    const dynsec = new DynsecClient({
      url: withoutCredentials(config.mqtt.admin_url), username: decodeURIComponent(admin.username),
      password: decodeURIComponent(admin.password), timeoutMs,
    });
    brokers.push({ broker: new MqttBroker(dynsec, { connectUrl: config.mqtt.connect_url ?? withoutCredentials(config.mqtt.admin_url) }), required: config.mqtt.required });
  }
  if (config.postgres) {
    const { PostgresBroker } = await import('./postgres.js');
    brokers.push({
      broker: new PostgresBroker({ adminUrl: config.postgres.admin_url, connectUrl: config.postgres.connect_url ?? withoutCredentials(config.postgres.admin_url), timeoutMs }),
      required: config.postgres.required,
    });
  }
  if (config.mongodb) {
    const { MongoBroker, mongoAdmin } = await import('./mongodb.js');
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
