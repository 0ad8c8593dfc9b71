import { randomUUID } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';

const COMMAND_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${COMMAND_TOPIC}/response`;

export interface DynsecCommand {
  command: string;
  [key: string]: unknown;
}

export interface DynsecResponse {
  command: string;
  error?: string;
  data?: unknown;
  correlationData?: string;
}

export interface DynsecClientOptions {
  /** mqtt://host:port or mqtts://…; the admin's name and password come separately. */
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
}

/**
 * Mosquitto's dynamic-security plugin as a request/response API: JSON commands published on
 * `$CONTROL/dynamic-security/v1`, answers on `…/response`, matched by the `correlationData` set on each command.
 * One admin connection, opened on first use and opened again after it drops.
 */
export class DynsecClient {
  private client: Promise<MqttClient> | null = null;
  private readonly waiting = new Map<string, (response: DynsecResponse) => void>();

  constructor(private readonly options: DynsecClientOptions) {}

  /** Runs the commands in order (the plugin processes one message's commands in order); one response per command. */
  async send(commands: DynsecCommand[]): Promise<DynsecResponse[]> {
    const client = await this.connection();
    const ids = commands.map(() => randomUUID());
    const answers = ids.map((id) => new Promise<DynsecResponse>((resolve) => this.waiting.set(id, resolve)));
    const timeout = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`Mosquitto did not answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs).unref();
    });
    try {
      await client.publishAsync(COMMAND_TOPIC, JSON.stringify({ commands: commands.map((c, i) => ({ ...c, correlationData: ids[i] })) }), { qos: 1 });
      return await Promise.race([Promise.all(answers), timeout]);
    } finally {
      for (const id of ids) this.waiting.delete(id);
    }
  }

  async close(): Promise<void> {
    const pending = this.client;
    this.client = null;
    if (pending) await pending.then((c) => c.endAsync(true), () => undefined);
  }

  private connection(): Promise<MqttClient> {
    this.client ??= this.open().catch((err: unknown) => {
      this.client = null;
      throw err;
    });
    return this.client;
  }

  private async open(): Promise<MqttClient> {
    const { url, username, password, timeoutMs } = this.options;
    const client = await connectAsync(url, {
      username, password, connectTimeout: timeoutMs, reconnectPeriod: 0, clean: true,
      clientId: `labhub-admin-${randomUUID().slice(0, 8)}`,
    }).catch((err: unknown) => {
      throw new Error(`cannot connect to Mosquitto: ${err instanceof Error ? err.message : String(err)}`);
    });
    const forget = () => {
      if (this.client) this.client = null;
    };
    client.on('close', forget);
    client.on('error', forget);
    client.on('message', (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let parsed: { responses?: DynsecResponse[] };
      try {
        parsed = JSON.parse(payload.toString()) as { responses?: DynsecResponse[] };
      } catch {
        return;
      }
      for (const response of parsed.responses ?? []) {
        if (response.correlationData) this.waiting.get(response.correlationData)?.(response);
      }
    });
    const granted = await client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    if (granted.some((g) => g.qos === 128)) {
      await client.endAsync(true);
      throw new Error('the Mosquitto admin account may not read dynamic-security responses');
    }
    return client;
  }
}
