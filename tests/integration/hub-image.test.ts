import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { CHART } from '../helpers/kube.js';

/**
 * scripts/build-hub-image.sh as a lab admin runs it to get the image the Helm chart deploys: built from the
 * checkout alone on a Node.js 20 base (here the test environment's labhub/node:20, as no registry is reachable),
 * then run the way the chart runs it, as uid 1000 on a read-only root file system. The build runs under umask 077,
 * as on a hardened machine, and must still give files every user can read.
 */
const SCRIPT = join(REPO, 'scripts/build-hub-image.sh');
const BASE = 'labhub/node:20';
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const APP_VERSION = (parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
const docker = new Docker();
const dockerRun = promisify(execFile);

interface ScriptRun { status: number | null; stdout: string; stderr: string }

function buildHubImage(args: string[], umask = '022'): Promise<ScriptRun> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', `umask ${umask} && exec bash "$0" "$@"`, SCRIPT, ...args], { timeout: 600_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe('scripts/build-hub-image.sh options', () => {
  it('prints its usage with --help, naming the chart default tag and the public base', async () => {
    const help = await buildHubImage(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain(`labhub/hub:${APP_VERSION}`);
    expect(help.stdout).toContain('node:20-bookworm-slim');
  });

  it.each([
    [['--bogus'], /unknown option --bogus/],
    [['--tag'], /--tag needs a value/],
    [['--tag', 'registry.example.org/lab/labhub-hub'], /--tag takes IMAGE:TAG/],
    [['--tag=Lab/Hub:1'], /--tag takes IMAGE:TAG/],
    [['--base', 'not an image'], /--base takes an image/],
    [['--push'], /--push needs --tag/],
  ])('refuses %j with exit 2 and a message, before building anything', async (args, message) => {
    const refused = await buildHubImage(args);
    expect(refused.status, refused.stdout + refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(message);
    expect(refused.stderr).toContain('--help');
    expect(refused.stdout).toBe('');
  });
});

const ready = requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${BASE} (scripts/setup-datalab.sh)`, await docker.getImage(BASE).inspect().then(() => true, () => false));

describe.skipIf(!ready)('scripts/build-hub-image.sh building the hub image', () => {
  const repository = 'labhub-test/hub';
  const tag = randomBytes(4).toString('hex');
  const image = `${repository}:${tag}`;
  let built: ScriptRun;

  beforeAll(async () => {
    built = await buildHubImage(['--base', BASE, '--tag', image], '077');
  }, 600_000);

  afterAll(async () => {
    await docker.getImage(image).remove().catch(() => undefined);
  });

  it('builds the tag and prints its id, size and the helm command that deploys it', async () => {
    expect(built.status, built.stdout + built.stderr).toBe(0);
    const inspected = await docker.getImage(image).inspect();
    expect(built.stdout).toContain(`image  ${image}`);
    expect(built.stdout).toContain(`id     ${inspected.Id}`);
    expect(built.stdout).toContain(`size   ${Math.floor(inspected.Size / 1e6)} MB`);
    expect(built.stdout).toContain(`--set image.repository=${repository} --set image.tag=${tag}`);
    expect(inspected.Config.Labels?.['org.labhub.build-hash']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('runs as the chart runs it: uid 1000, read-only root file system, LABHUB_DATA_DIR set', async () => {
    const chart = ['run', '--rm', '--network', 'none', '--read-only', '--user', '1000:1000'];
    const help = await dockerRun('docker', [...chart, '-e', 'LABHUB_DATA_DIR=/tmp', image, '--help']);
    expect(help.stdout).toMatch(new RegExp(`^labhub ${VERSION.replaceAll('.', '\\.')}: `));
    // The chart's own commands, from the image's working directory: the hub's state DB on its volume, and the proxy.
    const node = [...chart, '--tmpfs', '/srv/labhub', '-e', 'LABHUB_DATA_DIR=/srv/labhub', '--entrypoint', 'node', image];
    expect((await dockerRun('docker', [...node, 'dist/hub/main.js', 'db', 'upgrade'])).stdout).toMatch(/state DB/);
    expect((await dockerRun('docker', [...node, 'dist/proxy/main.js', '--help'])).stdout).toMatch(/^Usage: labhub proxy/);
  });

  it('holds the production dependencies only, every file readable by all though built under umask 077', async () => {
    const listing = await dockerRun('docker', ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c',
      'ls dist; ls node_modules; find /opt/labhub \\( -type d ! -perm -o=rx -o -type f ! -perm -o=r \\) -printf "unreadable %p\\n"']);
    const names = listing.stdout.split('\n');
    expect(names).toEqual(expect.arrayContaining(['hub', 'proxy', 'spawners', 'authenticators', 'datalab', 'better-sqlite3', 'express']));
    expect(names).not.toContain('bench');
    expect(names).not.toContain('vitest');
    expect(names).not.toContain('typescript');
    expect(listing.stdout).not.toMatch(/^unreadable /m);
  });

  it('leaves the tag as it is when run again on the same sources and base', async () => {
    const before = (await docker.getImage(image).inspect()).Id;
    const again = await buildHubImage(['--base', BASE, '--tag', image]);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`${image} is up to date`);
    expect(again.stdout).toContain('did: nothing to do');
    expect((await docker.getImage(image).inspect()).Id).toBe(before);
  });
});
