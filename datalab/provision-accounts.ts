/**
 * `node dist/datalab/provision-accounts.js`: the lab's start-up step that (re)creates the emulator's and the
 * ingester's MQTT accounts through the dynamic-security admin, retrying while the broker is still starting.
 */
import { z } from 'zod';
import { applyAccounts, DEAD_LETTER_TOPIC, emulatorAccount, ingesterAccount } from './mqtt-accounts.js';
import { describeIssues, rawSettings } from './settings.js';

const KEYS = [
  'MQTT_URL',
  'MQTT_ADMIN_USERNAME',
  'MQTT_ADMIN_PASSWORD',
  'EMULATOR_USERNAME',
  'EMULATOR_PASSWORD',
  'INGESTER_USERNAME',
  'INGESTER_PASSWORD',
  'DEAD_LETTER_TOPIC',
] as const;

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);
const secret = z.string().min(8).max(512);
const schema = z.strictObject({
  MQTT_URL: z.string().refine((s) => URL.canParse(s), 'expected a URL'),
  MQTT_ADMIN_USERNAME: name.default('admin'),
  MQTT_ADMIN_PASSWORD: secret,
  EMULATOR_USERNAME: name.default('sensor-emulator'),
  EMULATOR_PASSWORD: secret,
  INGESTER_USERNAME: name.default('sensor-ingest'),
  INGESTER_PASSWORD: secret,
  DEAD_LETTER_TOPIC: z.string().regex(/^[^#+]{1,200}$/).default(DEAD_LETTER_TOPIC),
});

async function main(): Promise<void> {
  const parsed = schema.safeParse(rawSettings(KEYS, process.env, process.argv.slice(2)));
  if (!parsed.success) throw new Error(`invalid settings: ${describeIssues(parsed.error.issues)}`);
  const s = parsed.data;
  const accounts = [
    emulatorAccount(s.EMULATOR_USERNAME, s.EMULATOR_PASSWORD),
    ingesterAccount(s.INGESTER_USERNAME, s.INGESTER_PASSWORD, s.DEAD_LETTER_TOPIC),
  ];
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await applyAccounts(s.MQTT_URL, { username: s.MQTT_ADMIN_USERNAME, password: s.MQTT_ADMIN_PASSWORD }, accounts);
      console.log(`provision-accounts: ${accounts.map((a) => `${a.username} (${a.role})`).join(', ')} ready`);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

main().catch((err: unknown) => {
  console.error(`provision-accounts: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
