/**
 * deploy/docker-compose.yml: checked by Debian's docker-compose, then brought up whole on the real engine with the
 * images scripts/setup-datalab.sh built (no registry; MongoDB is the lab's FerretDB): secrets generated on first
 * start, the broker's accounts provisioned, readings flowing from the emulator to the aggregates in PostgreSQL and
 * the raw readings in FerretDB, the hub starting a notebook container, reached through the proxy, on the network
 * that holds the broker and the databases; then a researcher in Chromium running the example notebook there.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { logIn, screenshot } from '../helpers/pages.js';
import { execIn } from '../helpers/containers.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const COMPOSE = '/usr/bin/docker-compose';
const DEPLOY = join(import.meta.dirname, '../../deploy');
const LAB_IMAGES = [
  'labhub/mosquitto:latest', 'labhub/postgres:latest', 'labhub/ferretdb:latest', 'labhub/sensor-ingest:latest', 'labhub/sensor-emulator:latest',
  'labhub/hub:latest', 'labhub/notebook-debian:latest',
];
const NOTEBOOK = 'examples/datalab.ipynb';

const docker = new Docker();
const haveCompose = requireService('docker-compose (Debian package)', (() => {
  try {
    accessSync(COMPOSE, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})());
const engineUp = await docker.ping().then(() => true, () => false);
const imagesBuilt = engineUp && (await Promise.all(LAB_IMAGES.map((i) => docker.getImage(i).inspect().then(() => true, () => false)))).every(Boolean);
const haveLab = haveCompose && requireService(`Docker engine with the lab images ${LAB_IMAGES.join(', ')} (scripts/setup-datalab.sh)`, imagesBuilt);
const haveChromium = haveLab && requireService('Chromium', chromiumAvailable());

describe.runIf(haveCompose)('deploy/docker-compose.yml', () => {
  it('is a valid compose file with every service of the lab', async () => {
    const { stdout } = await run(COMPOSE, ['-f', join(DEPLOY, 'docker-compose.yml'), 'config', '--services']);
    expect(stdout.trim().split('\n').sort()).toEqual(
      ['accounts', 'hub', 'init', 'mongo-gate', 'mongodb', 'mosquitto', 'postgres', 'proxy', 'sensor-emulator', 'sensor-ingest'].sort(),
    );
  });

  it('puts a real MongoDB in FerretDB\'s place with docker-compose.mongodb.yml, with roles for the accounts', async () => {
    const config = async (...files: string[]) => (await run(COMPOSE, [...files.flatMap((f) => ['-f', join(DEPLOY, f)]), 'config'])).stdout;
    const lab = await config('docker-compose.yml');
    expect(lab).toMatch(/^ {4}image: labhub\/ferretdb:latest$/m);
    expect(lab).not.toMatch(/mongo:7/);
    const withMongo = await config('docker-compose.yml', 'docker-compose.mongodb.yml');
    expect(withMongo).toMatch(/^ {4}image: mongo:7$/m);
    expect(withMongo).toMatch(/MONGO_INITDB_ROOT_PASSWORD_FILE: \/secrets\/mongodb$/m);
    expect(withMongo).toMatch(/^ {6}MONGODB_AUTHORIZATION: roles$/m);
    expect(withMongo).toMatch(/^ {6}MONGODB_CONNECT_URL: mongodb:\/\/mongodb:27017\/$/m);
  });

  describe.runIf(haveLab)('docker-compose up', () => {
    const id = randomBytes(3).toString('hex');
    const project = `labhubtest${id}`;
    const hubId = `labtest-${id}`;
    let port = 0;
    let env: NodeJS.ProcessEnv = {};
    const compose = (...args: string[]) => run(COMPOSE, ['-p', project, ...args], { cwd: DEPLOY, env, timeout: 300_000 });
    const hubCli = async (...args: string[]) => (await compose('exec', '-T', 'hub', 'node', '/opt/labhub/dist/hub/main.js', ...args)).stdout.trim();
    let token = '';
    const api = (method: string, path: string) =>
      fetch(`http://127.0.0.1:${port}/hub/api${path}`, { method, headers: { authorization: `token ${token}` } });

    beforeAll(async () => {
      port = await freePort();
      env = { ...process.env, LABHUB_PORT: String(port), LABHUB_NETWORK: `labhub-lab-${id}`, LABHUB_HUB_ID: hubId, LABHUB_SENSOR_RATE_HZ: '5' };
      await compose('up', '-d');
    }, 300_000);

    afterAll(async () => {
      if (token) await api('DELETE', '/users/admin/server').catch(() => undefined);
      for (const c of await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } })) {
        await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      }
      await compose('down', '-v', '--timeout', '5').catch(() => undefined);
      for (const v of (await docker.listVolumes()).Volumes ?? []) {
        if (v.Labels?.['org.labhub.hub'] === hubId) await docker.getVolume(v.Name).remove().catch(() => undefined);
      }
    }, 120_000);

    it('generates its secrets, provisions the broker accounts and stores aggregates and raw readings', async () => {
      const { stdout: ps } = await compose('ps', '-a');
      expect(ps).toMatch(/_init_1\s.*Exit 0/);
      const aggregated = async (): Promise<number> => {
        const { stdout } = await compose('exec', '-T', '-u', 'postgres', 'postgres', '/usr/lib/postgresql/15/bin/psql', '-d', 'lab', '-tAc',
          'SELECT coalesce(sum(count), 0) FROM shared.sensor_minute').catch(() => ({ stdout: '0' }));
        return Number(stdout.trim());
      };
      await expect.poll(aggregated, { timeout: 60_000, interval: 1000 }).toBeGreaterThan(50);
      const { stdout: health } = await compose('exec', '-T', 'sensor-ingest', 'node', '-e',
        "fetch('http://127.0.0.1:9464/healthz').then(async (r) => console.log(r.status, await r.text()))");
      expect(health).toMatch(/^200 .*"mqttConnected":true/);
      // Raw readings in FerretDB, read with the lab's generated MongoDB URL through the ingester's own driver.
      const rawCount = async (): Promise<number> => {
        const { stdout } = await compose('exec', '-T', 'sensor-ingest', 'node', '--input-type=module', '-e', [
          "import { readFileSync } from 'node:fs'; import { MongoClient } from 'mongodb';",
          "const client = new MongoClient(readFileSync('/secrets/mongodb-url', 'utf8').trim());",
          "console.log(await client.db('sensors').collection('readings').countDocuments()); await client.close();",
        ].join(' ')).catch(() => ({ stdout: '0' }));
        return Number(stdout.trim());
      };
      await expect.poll(rawCount, { timeout: 30_000, interval: 1000 }).toBeGreaterThan(50);
      // The secrets are in the volume, not in the services' environment.
      const { stdout: envOut } = await compose('exec', '-T', 'sensor-ingest', 'env');
      expect(envOut).toMatch(/MQTT_PASSWORD_FILE=\/secrets\/mqtt-ingester/);
      expect(envOut).not.toMatch(/^MQTT_PASSWORD=/m);
    }, 120_000);

    it('starts a notebook server through the hub, reached via the proxy, on the lab network', async () => {
      await expect.poll(async () => (await fetch(`http://127.0.0.1:${port}/hub/api`).catch(() => null))?.status, { timeout: 60_000 }).toBe(200);
      expect(await hubCli('users', 'add', 'admin', '--admin')).toMatch(/added admin/);
      token = await hubCli('token', 'admin');
      expect((await api('POST', '/users/admin/server')).status).toBeLessThan(300);
      await expect
        .poll(async () => (await fetch(`http://127.0.0.1:${port}/user/admin/api`, { headers: { authorization: `token ${token}` } })).status, {
          timeout: 90_000,
          interval: 1000,
        })
        .toBe(200);
      const [notebook] = await docker.listContainers({ filters: { label: [`org.labhub.hub=${hubId}`] } });
      expect(notebook).toBeDefined();
      const python = async (code: string) => (await execIn(notebook!.Id, ['python3', '-c', code])).output;
      expect(await python("import socket; print(socket.gethostbyname('postgres'), socket.gethostbyname('mosquitto'), socket.gethostbyname('mongo-gate'))"))
        .toMatch(/\d+\.\d+\.\d+\.\d+ \d+\.\d+\.\d+\.\d+ \d+\.\d+\.\d+\.\d+/);
      // FerretDB, which checks passwords but no roles, is out of the notebook's reach: only the gate is on its network.
      expect(await python([
        'import socket',
        'try:',
        "    socket.create_connection(('mongodb', 27017), timeout=3); print('reached FerretDB')",
        'except OSError as e:',
        "    print('unreachable', type(e).__name__)",
      ].join('\n'))).toMatch(/^unreachable/);

      // The server's own accounts, issued by the hub from the lab's generated admin secrets: live sensor readings
      // over MQTT and the aggregates in PostgreSQL, through the labhub_datalab module of the notebook image.
      const probeOutput = await python([
        'import labhub_datalab as lab',
        'print(lab.credentials("mqtt")["username"] != "", len(list(lab.sensors(limit=1, timeout=30))))',
        'cur = lab.postgres().cursor(); cur.execute("SELECT count(*) FROM shared.sensor_minute"); print(cur.fetchone()[0] > 0)',
        // Through the gate: the shared raw readings are readable, the lab's other databases are not.
        'import pymongo',
        'm = pymongo.MongoClient(lab.credentials("mongodb")["url"], serverSelectionTimeoutMS=10000)',
        'print(m.sensors.readings.find_one() is not None)',
        'try:',
        '    m.admin["system.users"].find_one(); print("read admin")',
        'except pymongo.errors.OperationFailure as e:',
        '    print("refused", e.code)',
      ].join('\n'));
      expect(probeOutput).toMatch(/True 1\s+True\s+True\s+refused 13/);
    }, 240_000);

    it.runIf(haveChromium)('lets a researcher log in, start a server and run the example notebook in Chromium', async () => {
      const password = randomBytes(12).toString('hex');
      const added = run(COMPOSE, ['-p', project, 'exec', '-T', 'hub', 'node', '/opt/labhub/dist/hub/main.js', 'users', 'add', 'ada', '--password-stdin'],
        { cwd: DEPLOY, env, timeout: 60_000 });
      added.child.stdin?.end(`${password}\n`);
      expect((await added).stdout).toMatch(/added ada/);

      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const base = `http://127.0.0.1:${port}`;
        await logIn(page, base, 'ada', password);
        await page.getByRole('button', { name: 'Start' }).click();
        await page.waitForURL(/\/user\/ada\/(tree|lab)/, { timeout: 120_000 });

        // Debian's image runs jupyterhub-singleuser 3.0 with the classic notebook; Cell > Run All, as a person would.
        await page.goto(`${base}/user/ada/notebooks/${NOTEBOOK}`);
        await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ timeout: 60_000 });
        await page.locator('#celllink').click();
        await page.locator('#run_all_cells').click();
        const allRan = () => page.evaluate(() => {
          const { Jupyter } = globalThis as unknown as { Jupyter: { notebook: { get_cells(): Array<{ cell_type: string; input_prompt_number?: unknown }> } } };
          return Jupyter.notebook.get_cells().every((c) => c.cell_type !== 'code' || typeof c.input_prompt_number === 'number');
        });
        await expect.poll(allRan, { timeout: 120_000, interval: 500 }).toBe(true);
        await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ timeout: 30_000 });

        expect(await page.locator('.output_error, .output_stderr').allTextContents()).toEqual([]);
        expect(await page.locator('.output_png img').count()).toBe(2);
        expect(await page.locator('.output_html table.dataframe tbody tr').count()).toBeGreaterThan(1);
        const printed = (await page.locator('.output_stdout').allTextContents()).join('');
        expect(printed).toMatch(/\d+ raw readings in sensors\.readings/);

        // The notebook logged in with ada's own leased accounts, never the lab's admin ones.
        const leases = await (await api('GET', '/users/ada/credentials')).json() as Array<{ service: string; account: string }>;
        const account = (service: string) => leases.find((l) => l.service === service)?.account ?? '(no lease)';
        expect(account('postgres')).toMatch(/^lh_ada_[0-9a-f]{12}$/);
        expect(printed).toContain(`mqtt      ${account('mqtt')}`);
        expect(printed).toContain(`postgres  ${account('postgres')}`);
        expect(printed).toContain(`mongodb   ${account('mongodb')}`);
        expect(printed).toContain(`Querying as ${account('postgres')}`);

        // The whole notebook in one picture: classic Jupyter scrolls inside #site, so the viewport grows to fit it.
        const height = await page.evaluate(() => {
          const { document } = globalThis as unknown as { document: { querySelector(s: string): { scrollHeight: number; offsetHeight: number } | null } };
          return (document.querySelector('#notebook')?.scrollHeight ?? 0) + (document.querySelector('#header')?.offsetHeight ?? 0);
        });
        await page.setViewportSize({ width: 1280, height: Math.min(Math.max(height, 900), 8000) });
        await screenshot(page, 'datalab-notebook');
      } finally {
        await browser.close();
      }
    }, 300_000);
  });
});

describe.runIf(haveLab)(`${NOTEBOOK} without a lab`, () => {
  it('runs from top to bottom with no credentials at all, each cell saying what it skipped', async () => {
    const { stdout } = await run('docker', [
      'run', '--rm', '--network', 'none', 'labhub/notebook-debian:latest',
      'sh', '-c', `cp ${NOTEBOOK} /tmp/run.ipynb && python3 -m nbconvert --to notebook --execute --stdout /tmp/run.ipynb 2>/dev/null`,
    ], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 });
    const outputs = (JSON.parse(stdout) as { cells: Array<{ outputs?: Array<{ output_type: string; name?: string; text?: string[] }> }> })
      .cells.flatMap((c) => c.outputs ?? []);
    expect(outputs.filter((o) => o.output_type === 'error' || o.name === 'stderr')).toEqual([]);
    const printed = outputs.map((o) => (o.text ?? []).join('')).join('');
    for (const service of ['mqtt', 'postgres', 'mongodb']) expect(printed).toContain(`Skipped: no ${service} credentials in this server`);
  }, 120_000);
});
