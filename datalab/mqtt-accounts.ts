/**
 * The DataLab services' own MQTT accounts on Mosquitto's dynamic-security plugin, each with only what it needs:
 *   - sensor-emulator: publish on sensors/#;
 *   - sensor-ingest: subscribe to sensors/# and publish on the dead-letter topic.
 * Commands go as JSON to $CONTROL/dynamic-security/v1 (the admin made by `mosquitto_ctrl dynsec init` may do
 * that); applying them twice is harmless, so the compose file's init step can run on every start.
 */
import { DynsecClient } from '../hub/credentials/dynsec-client.js';

export const DEAD_LETTER_TOPIC = 'deadletter/sensors';

interface Acl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'subscribeLiteral';
  topic: string;
  allow: boolean;
  priority?: number;
}

export interface ServiceAccount {
  username: string;
  password: string;
  role: string;
  acls: Acl[];
}

export function emulatorAccount(username: string, password: string): ServiceAccount {
  return { username, password, role: 'sensor-publisher', acls: [{ acltype: 'publishClientSend', topic: 'sensors/#', allow: true }] };
}

export function ingesterAccount(username: string, password: string, deadLetterTopic = DEAD_LETTER_TOPIC): ServiceAccount {
  return {
    username,
    password,
    role: 'sensor-ingester',
    acls: [
      { acltype: 'subscribePattern', topic: 'sensors/#', allow: true },
      { acltype: 'publishClientSend', topic: deadLetterTopic, allow: true },
    ],
  };
}

type Command = Record<string, unknown> & { command: string };

/** The commands that make (or re-make) one account: its role with exactly these ACLs, then the client. */
export function accountCommands(account: ServiceAccount): Command[] {
  return [
    { command: 'deleteClient', username: account.username },
    { command: 'deleteRole', rolename: account.role },
    { command: 'createRole', rolename: account.role, acls: account.acls.map((a) => ({ priority: 0, ...a })) },
    { command: 'createClient', username: account.username, password: account.password, roles: [{ rolename: account.role, priority: 0 }] },
  ];
}

/** Errors that mean "already as wanted" for these commands. */
const HARMLESS = /not found/i;

/** Sends the commands as the dynsec admin and fails on any error other than a missing role or client. */
export async function applyAccounts(brokerUrl: string, admin: { username: string; password: string }, accounts: ServiceAccount[]): Promise<void> {
  const dynsec = new DynsecClient({ url: brokerUrl, username: admin.username, password: admin.password, timeoutMs: 10_000 });
  try {
    const failed = (await dynsec.send(accounts.flatMap(accountCommands))).filter((r) => r.error !== undefined && !HARMLESS.test(r.error));
    if (failed.length > 0) throw new Error(`dynamic-security refused: ${failed.map((r) => `${r.command}: ${r.error}`).join('; ')}`);
  } finally {
    await dynsec.close();
  }
}
