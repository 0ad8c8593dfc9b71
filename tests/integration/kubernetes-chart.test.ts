import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { api, Browser, eventually, landInServer, xsrfFromHtml } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { executeInKernel } from '../helpers/kernel.js';
import { CHART, clusterInstalled, TestCluster } from '../helpers/kube.js';
import { CLIENT_ID, CLIENT_SECRET, TestProvider, TwoSiteBrowser } from '../helpers/oidc-provider.js';
import { freePort } from '../helpers/ports.js';
import { BASE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd, slapdAvailable } from '../helpers/slapd.js';

/**
 * The Helm chart installed as a user would (`helm install` with default values) on the real test cluster
 * (scripts/k8s-cluster.sh): hub and proxy pods placed by the scheduler, the hub's DB on a PVC bound by the
 * provisioner, everything reached through the proxy's Service. Then the chart's NetworkPolicies, enforced by
 * kube-router, probed from inside a user's pod, and probed again with the policies turned off so that the probes
 * themselves are shown able to succeed.
 */
const APP_VERSION = (parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
const HUB_IMAGE = `labhub/hub:${APP_VERSION}`;
const run = promisify(execFile);
const docker = new Docker();
const ready = requireService('Kubernetes test cluster and helm (scripts/setup-k8s.sh, scripts/k8s-cluster.sh)', clusterInstalled())
  && requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${HUB_IMAGE} (scripts/setup-datalab.sh)`, await docker.getImage(HUB_IMAGE).inspect().then(() => true, () => false));

const METADATA_ADDRESS = '169.254.169.254';
const PASSWORD = 'chart-test-password-1';

/** What a probe from inside a pod got: an HTTP status, or the error that stopped it. */
type Probe = string;

describe.skipIf(!ready)('the Helm chart installed on a real cluster', () => {
  const namespace = `chart-${randomBytes(3).toString('hex')}`;
  const release = 'lab';
  // The chart's names: <release>-labhub-<part> (a release named after the chart would drop the repeat).
  const fullname = `${release}-labhub`;
  let cluster: TestCluster;
  let origin = '';
  let admin = '';
  let metadata: Server | undefined;
  const labServers: Server[] = [];


  const hubPod = async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=hub' });
    return pods.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  };
  const labhub = async (args: string[]) => cluster.kubectl(['exec', '-n', namespace, (await hubPod())!.metadata!.name!, '--', 'node', 'dist/hub/main.js', ...args]);

  /** A user's account made the way an admin hands it out: an invitation link, opened through the proxy. */
  async function invitedUser(name: string): Promise<Browser> {
    expect((await api(origin, admin, 'POST', '/users', { usernames: [name] })).status).toBe(201);
    const link = new URL((await labhub(['users', 'invite', name])).trim().split('\t').at(-1)!);
    const browser = new Browser(origin);
    const page = await browser.navigate(link.pathname + link.search);
    expect(page.status).toBe(200);
    const set = await browser.navigate(link.pathname + link.search, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _xsrf: xsrfFromHtml(await page.text()), password: PASSWORD, password2: PASSWORD }).toString(),
    });
    expect(set.status, browser.visited.join(' -> ')).toBe(200);
    return browser;
  }

  async function startServer(user: string): Promise<string> {
    const started = await api(origin, admin, 'POST', `/users/${user}/server`);
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    const model = await eventually(async () => {
      const m = (await api(origin, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { ready: boolean; state: { pod_name: string } }> };
      return m.servers['']?.ready ? m.servers[''] : null;
    }, 120_000, 500);
    return model.state.pod_name;
  }

  /** Each target tried from inside a pod with python3 (in the notebook image), 3 s each. */
  async function probeFrom(pod: string, targets: Record<string, string>): Promise<Record<string, Probe>> {
    const script = [
      'import json, sys, urllib.request, ssl',
      'out = {}',
      'for name, url in json.loads(sys.argv[1]).items():',
      '    try:',
      '        out[name] = str(urllib.request.urlopen(url, timeout=3, context=ssl._create_unverified_context()).status)',
      '    except urllib.error.HTTPError as e:',
      '        out[name] = str(e.code)',
      '    except Exception as e:',
      '        out[name] = type(e).__name__ + ": " + str(getattr(e, "reason", e))',
      'print(json.dumps(out))',
    ].join('\n');
    const stdout = await cluster.kubectl(['exec', '-n', namespace, pod, '--', 'python3', '-c', script, JSON.stringify(targets)]);
    return JSON.parse(stdout) as Record<string, Probe>;
  }

  beforeAll(async () => {
    cluster = await TestCluster.connect();
    await cluster.helm(['install', release, CHART, '--namespace', namespace, '--create-namespace', '--wait', '--timeout', '240s']);
    const service = await cluster.core.readNamespacedService({ name: `${fullname}-proxy-public`, namespace });
    origin = `http://${service.spec!.clusterIP}:${service.spec!.ports![0]!.port}`;
    // The first admin through the one-time setup link the hub logs at its first start, opened through the proxy.
    const log = await cluster.core.readNamespacedPodLog({ name: (await hubPod())!.metadata!.name!, namespace });
    const setup = new URL(/https?:\/\/\S+\/hub\/setup\?code=\S+/.exec(log)![0]);
    const browser = new Browser(origin);
    const page = await browser.navigate(setup.pathname + setup.search);
    await browser.navigate(setup.pathname + setup.search, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _xsrf: xsrfFromHtml(await page.text()), username: 'admin', password: PASSWORD, password2: PASSWORD }).toString(),
    });
    expect((await browser.navigate('/hub/admin')).status).toBe(200);
    admin = (await labhub(['token', 'admin'])).trim();
  }, 420_000);

  afterAll(async () => {
    metadata?.close();
    for (const server of labServers) server.close();
    await run('ip', ['addr', 'del', `${METADATA_ADDRESS}/32`, 'dev', 'lo']).catch(() => undefined);
    await cluster.helm(['uninstall', release, '--namespace', namespace]).catch(() => undefined);
    await cluster?.core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await cluster?.stop();
  });

  it('installs with default values: Ready hub and proxy placed by the scheduler, the hub DB on a provisioned PVC', async () => {
    const pods = (await cluster.core.listNamespacedPod({ namespace })).items;
    const [node] = (await cluster.core.listNode()).items;
    expect(pods.map((p) => p.metadata!.labels!['app.kubernetes.io/component']).sort()).toEqual(['hub', 'proxy']);
    for (const pod of pods) {
      expect(pod.spec!.nodeName).toBe(node!.metadata!.name);
      expect(pod.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
    }
    const claim = await cluster.core.readNamespacedPersistentVolumeClaim({ name: `${fullname}-hub-db`, namespace });
    expect(claim.status!.phase).toBe('Bound');
    expect(claim.spec!.storageClassName).toBe('local-path');
  });

  it('serves a user through the proxy Service: invitation, login, a server in a pod with its own PVC, a kernel over the websocket', async () => {
    const dora = await invitedUser('dora');
    expect((await dora.navigate('/hub/home')).status).toBe(200);
    const pod = await startServer('dora');
    await landInServer(dora, '/user/dora/');
    const kernel = await (await dora.request('/user/dora/api/kernels', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-xsrftoken': dora.cookie('_xsrf', '/user/dora/') ?? '' }, body: '{}',
    })).json() as { id: string };
    expect(await executeInKernel(origin, '/user/dora/', kernel.id, '6*7', { cookie: dora.cookieHeader(`/user/dora/api/kernels/${kernel.id}/channels`) })).toBe('42');
    const spec = (await cluster.core.readNamespacedPod({ name: pod, namespace })).spec!;
    const claim = spec.volumes!.find((v) => v.persistentVolumeClaim)!.persistentVolumeClaim!.claimName;
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace })).status!.phase).toBe('Bound');

    expect((await api(origin, admin, 'DELETE', '/users/dora/server')).status).toBeLessThan(300);
    await eventually(() => cluster.core.readNamespacedPod({ name: pod, namespace }).then(() => false, () => true), 60_000);
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace })).status!.phase).toBe('Bound');
  });

  it('keeps sessions across helm upgrade and running servers across a replaced hub pod', async () => {
    const erin = await invitedUser('erin');
    await startServer('erin');
    await landInServer(erin, '/user/erin/');
    const before = (await cluster.core.readNamespacedSecret({ name: `${fullname}-hub`, namespace })).data;
    await cluster.helm(['upgrade', release, CHART, '--namespace', namespace, '--wait', '--timeout', '240s', '--set', 'singleuser.startTimeout=600']);
    expect((await cluster.core.readNamespacedSecret({ name: `${fullname}-hub`, namespace })).data).toEqual(before);
    const replaced = (await hubPod())!.metadata!.name!;
    await cluster.core.deleteNamespacedPod({ name: replaced, namespace });
    await eventually(async () => {
      const pod = await hubPod();
      return pod && pod.metadata!.name !== replaced;
    }, 180_000, 1000);
    // Ready is the kubelet's word; the Service sends traffic there once kube-proxy has the new endpoint.
    await eventually(() => fetch(`${origin}/hub/health`).then((r) => r.ok, () => false), 60_000, 500);
    // The same browser session, signed with the kept cookie secret, on the new hub; erin's server never stopped.
    const home = await erin.navigate('/hub/home');
    expect(home.status, `${erin.visited.slice(-4).join(' -> ')}: ${(await home.text()).slice(0, 300)}`).toBe(200);
    const status = await erin.request('/user/erin/api/status');
    expect(status.status).toBe(200);
  });

  it('enforces its NetworkPolicies inside a user pod, and the same probes pass with the policies off', async () => {
    // A stand-in for a cloud's metadata service on this node, which pods reach through their default route.
    await run('ip', ['addr', 'add', `${METADATA_ADDRESS}/32`, 'dev', 'lo']).catch(() => undefined);
    metadata = createServer((_req, res) => res.end('metadata')).listen(80, METADATA_ADDRESS);
    await new Promise((resolve) => metadata!.once('listening', resolve));

    // A lab service the chart lets user pods reach (labServices), and another port on the same host that it does not.
    const node = await cluster.nodeAddress();
    const [labPort, otherPort] = [await freePort(), await freePort()];
    for (const port of [labPort, otherPort]) {
      const server = createServer((_req, res) => res.end('lab')).listen(port, node);
      await new Promise((resolve) => server.once('listening', resolve));
      labServers.push(server);
    }
    await cluster.helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', '--wait',
      '--set', 'networkPolicy.singleuserInternet=false', '--set', `labServices.mqtt.cidr=${node}/32`, '--set', `labServices.mqtt.port=${labPort}`]);

    const probePod = await startServer('dora');
    const otherPod = (await cluster.core.readNamespacedPod({ name: (((await api(origin, admin, 'GET', '/users/erin')).body as { servers: Record<string, { state: { pod_name: string } }> }).servers['']!.state.pod_name), namespace })).status!.podIP;
    const targets = {
      // By the Service's name: the cluster's DNS answers user pods.
      hubApi: `http://${fullname}-hub:8081/hub/api/`,
      labService: `http://${node}:${labPort}/`,
      otherLabPort: `http://${node}:${otherPort}/`,
      proxyApi: `http://${fullname}-proxy-api:8001/api/routes`,
      otherUser: `http://${otherPod}:8888/user/erin/api/status`,
      kubernetesApi: 'https://kubernetes.default.svc/version',
      metadata: `http://${METADATA_ADDRESS}/`,
    };
    const enforced = await probeFrom(probePod, targets);
    expect(enforced.hubApi, JSON.stringify(enforced)).toBe('200');
    expect(enforced.labService, JSON.stringify(enforced)).toBe('200');
    for (const blocked of ['otherLabPort', 'proxyApi', 'otherUser', 'kubernetesApi', 'metadata'] as const) {
      expect(enforced[blocked], `${blocked}: ${JSON.stringify(enforced)}`).toMatch(/timed out|TimeoutError|refused/i);
    }

    await cluster.helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', '--set', 'networkPolicy.enabled=false', '--wait']);
    const open = await eventually(async () => {
      const probes = await probeFrom(probePod, targets);
      return Object.values(probes).every((p) => /^\d+$/.test(p)) ? probes : null;
    }, 60_000, 2000);
    expect(open.proxyApi).toBe('403');
    expect(open.metadata).toBe('200');
    expect(open.otherLabPort).toBe('200');
    expect(Number(open.otherUser)).toBeGreaterThanOrEqual(200);
    expect(Number(open.kubernetesApi)).toBeGreaterThanOrEqual(200);

    await cluster.helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', '--set', 'networkPolicy.enabled=true', '--wait']);
    await eventually(async () => /timed out|TimeoutError|refused/i.test((await probeFrom(probePod, { metadata: targets.metadata })).metadata!), 60_000, 2000);
  });

  it('helm uninstall leaves the hub DB claim and the users\' home claims, as documented', async () => {
    for (const user of ['dora', 'erin']) await api(origin, admin, 'DELETE', `/users/${user}/server`);
    await eventually(async () => (await cluster.core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=singleuser-server' })).items.length === 0, 60_000, 1000);
    await cluster.helm(['uninstall', release, '--namespace', namespace, '--wait']);
    await eventually(async () => (await cluster.core.listNamespacedPod({ namespace })).items.length === 0, 90_000, 1000);
    const claims = (await cluster.core.listNamespacedPersistentVolumeClaim({ namespace })).items.map((c) => c.metadata!.name!).sort();
    expect(claims).toContain(`${fullname}-hub-db`);
    const homes = claims.filter((c) => c !== `${fullname}-hub-db`);
    expect(homes).toHaveLength(2);
    for (const home of homes) expect(home).toMatch(/-home--/);
    const secrets = (await cluster.core.listNamespacedSecret({ namespace })).items.map((s) => s.metadata!.name);
    expect(secrets).toEqual([]);
    const services = (await cluster.core.listNamespacedService({ namespace })).items.map((s) => s.metadata!.name);
    expect(services).toEqual([]);
  });
});

describe.skipIf(!ready || !requireService('slapd (scripts/setup-auth.sh)', slapdAvailable))('the Helm chart with LDAP and OpenID Connect sign-in', () => {
  const suffix = randomBytes(3).toString('hex');
  const release = 'lab';
  let cluster: TestCluster;
  let slapd: Slapd;
  let provider: TestProvider;

  /** The release installed in its own namespace beside a Secret `idp` holding `secrets`; returns the proxy's origin. */
  async function install(namespace: string, secrets: Record<string, string>, values: string[]): Promise<string> {
    await cluster.createNamespace(namespace);
    await cluster.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'idp' }, stringData: secrets } });
    await cluster.helm(['install', release, CHART, '--namespace', namespace, '--wait', '--timeout', '240s', '--set', 'auth.existingSecret=idp', ...values.flatMap((v) => ['--set', v])]);
    const service = await cluster.core.readNamespacedService({ name: `${release}-labhub-proxy-public`, namespace });
    return new URL(`http://${service.spec!.clusterIP}:${service.spec!.ports![0]!.port}`).origin;
  }
  const escaped = (dn: string) => dn.replaceAll(',', '\\,');

  beforeAll(async () => {
    cluster = await TestCluster.connect();
    // The identity providers run on this machine, at the node's address the hub pods reach.
    const node = await cluster.nodeAddress();
    slapd = new Slapd({ people: [{ uid: 'frank', password: 'Frank-pw-77' }], groups: {} }, { host: node });
    await slapd.start();
    provider = new TestProvider(await freePort(), { 'sub-gina': { preferred_username: 'gina' }, 'sub-hugo': { preferred_username: 'hugo' } }, node);
  }, 120_000);

  afterAll(async () => {
    await slapd?.stop();
    await provider?.stop();
    await cluster?.stop();
  });

  it('signs a directory user in through the proxy Service, with the search password from the named Secret', async () => {
    const origin = await install(`chart-ldap-${suffix}`, { 'ldap-bind-password': SERVICE_PASSWORD }, [
      'auth.type=ldap', `auth.ldap.url=${slapd.url}`, `auth.ldap.search.base_dn=${escaped(`ou=people,${BASE_DN}`)}`,
      `auth.ldap.search.bind_dn=${escaped(SERVICE_DN)}`, 'auth.adminUsers={frank}',
    ]);
    const frank = new Browser(origin);
    const home = await frank.login('frank', 'Frank-pw-77');
    expect(home.status, frank.visited.join(' -> ')).toBe(200);
    expect(frank.visited.at(-1)).toBe('/hub/home');
    expect((await frank.navigate('/hub/admin')).status).toBe(200);
    const intruder = new Browser(origin);
    await intruder.login('frank', 'not-his-password');
    await intruder.navigate('/hub/home');
    expect(intruder.visited.at(-1)).toMatch(/^\/hub\/login/);
  }, 300_000);

  it('signs a user in with OpenID Connect through the proxy Service, with the client secret from the named Secret', async () => {
    const namespace = `chart-oidc-${suffix}`;
    const origin = await install(namespace, { 'oidc-client-secret': CLIENT_SECRET }, [
      'auth.type=oidc', `auth.oidc.issuer=${provider.issuer}`, `auth.oidc.client_id=${CLIENT_ID}`, 'auth.oidc.allow_insecure_http=true',
      'auth.allowedUsers={gina}',
    ]);
    // The public address is the proxy Service's, known once it exists: the provider and the hub learn it now.
    await provider.start(origin);
    await cluster.helm(['upgrade', release, CHART, '--namespace', namespace, '--reuse-values', '--wait', '--timeout', '240s', '--set', `auth.oidc.redirect_url=${new URL('/hub/oauth_callback', origin).href}`]);
    const gina = new TwoSiteBrowser(origin, provider.issuer);
    const { res, url } = await gina.go('/hub/oauth_login?next=%2Fhub%2Fhome', 'sub-gina');
    const log = () => cluster.kubectl(['logs', '-n', namespace, '-l', 'app.kubernetes.io/component=hub', '--tail', '30']).catch((e: Error) => e.message);
    expect(res.status, `${gina.visited.map((u) => u.pathname).join(' -> ')}\n${res.status === 200 ? '' : await log()}`).toBe(200);
    expect(url.pathname).toBe('/hub/home');
    const hugo = new TwoSiteBrowser(origin, provider.issuer);
    expect((await hugo.go('/hub/oauth_login?next=%2Fhub%2Fhome', 'sub-hugo')).res.status).toBe(403);
  }, 300_000);
});
