import type { AccountPlan, CredentialBroker, Delivery, IssueRequest } from './broker.js';
import { accountName, type AccountOwner } from './names.js';
import { accountVariables } from './urls.js';
import type { DynsecClient, DynsecCommand } from './dynsec-client.js';

export interface MqttBrokerOptions {
  /** What notebook servers connect to, e.g. mqtt://mosquitto:1883. */
  connectUrl: string;
}

/** Errors that mean "already gone": revocation treats them as success. */
const GONE = /not found/i;

/**
 * Per-server MQTT accounts in Mosquitto's dynamic-security plugin. Dynsec ACLs cannot name the client
 * (no `%u` in 2.0), so each account gets its own role holding exactly its topic filters; both go at revocation,
 * and `deleteClient` disconnects the account's live sessions at once.
 */
export class MqttBroker implements CredentialBroker {
  readonly service = 'mqtt' as const;

  constructor(private readonly dynsec: DynsecClient, private readonly options: MqttBrokerOptions) {}

  plan(owner: AccountOwner): AccountPlan {
    return { account: accountName('labhub', owner.name, '-'), revokeData: {} };
  }

  async issue(request: IssueRequest): Promise<Delivery> {
    const { account, password, policy } = request;
    const { subscribe, publish } = policy.mqtt;
    const acls = [
      ...subscribe.map((topic) => ({ acltype: 'subscribePattern', topic, priority: 0, allow: true })),
      ...publish.flatMap((topic) => [
        { acltype: 'publishClientSend', topic, priority: 0, allow: true },
        { acltype: 'subscribePattern', topic, priority: 0, allow: true },
      ]),
    ];
    const responses = await this.dynsec.send(issueCommands(account, password, acls, request.user));
    const failed = responses.find((r) => r.error);
    if (failed) throw new Error(`Mosquitto refused ${failed.command}: ${failed.error}`);
    return {
      env: {
        ...accountVariables('MQTT', this.options.connectUrl, account, password),
        LABHUB_MQTT_SUBSCRIBE: subscribe.join(','),
        LABHUB_MQTT_PUBLISH: publish.join(','),
      },
      file: { url: this.options.connectUrl, username: account, password, subscribe, publish },
    };
  }

  /** Dynsec has no expiry: the hub's sweeper is the TTL. */
  async renew(): Promise<void> {}

  async revoke(plan: AccountPlan): Promise<void> {
    const responses = await this.dynsec.send(revokeCommands(plan.account));
    const failed = responses.find((r) => r.error && !GONE.test(r.error));
    if (failed) throw new Error(`Mosquitto refused ${failed.command}: ${failed.error}`);
  }

  close(): Promise<void> {
    return this.dynsec.close();
  }
}

/** The role first: createClient fails whole when a role it names does not exist. */
export function issueCommands(account: string, password: string, acls: object[], user: string): DynsecCommand[] {
  return [
    { command: 'createRole', rolename: account, textdescription: `LabHub lease of ${user}`, acls },
    { command: 'createClient', username: account, password, textdescription: `LabHub lease of ${user}`, roles: [{ rolename: account, priority: 0 }] },
  ];
}

/** The client first: deleting it kicks its sessions, and the role is then unused. */
export function revokeCommands(account: string): DynsecCommand[] {
  return [{ command: 'deleteClient', username: account }, { command: 'deleteRole', rolename: account }];
}
