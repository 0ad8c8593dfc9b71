import { createServer, type Server } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { LabHubConfig } from './config/schema.js';
import { ConfigError, publicOrigin } from './config/load.js';
import { openStateDatabase } from './db/open-state.js';
import { createStore } from './db/index.js';
import { createLogger, type Logger } from './log.js';
import { COOKIE_SECRET_FILE, loadOrCreateSecret, PROXY_TOKEN_FILE } from './secrets.js';
import { Authorizer } from './auth/identity.js';
import { SessionManager } from './auth/sessions.js';
import { TokenService } from './auth/token-service.js';
import { Xsrf } from './auth/xsrf.js';
import { buildRoles } from './auth/roles.js';
import { syncAdminFlags } from './auth/admin-role.js';
import { ADMIN_ROLE } from './db/roles.js';
import { normalizeUsername } from './auth/usernames.js';
import { createHubMetrics } from './metrics.js';
import { ServerManager } from './servers/manager.js';
import { idleCullerFor } from './servers/idle-culler.js';
import { ProxySupervisor } from './proxy-supervisor.js';
import type { HubContext } from './context.js';
import { JUPYTERHUB_API_VERSION, VERSION } from './version.js';
import { apiErrorHandler, apiNotFound, loggablePath } from './api/errors.js';
import { jsonDepth, MAX_JSON_DEPTH } from './api/validate.js';
import { HttpError } from './errors.js';
import { authenticateApi } from './api/authenticate.js';
import { rootRouter } from './api/root.js';
import { usersRouter } from './api/users.js';
import { serversRouter } from './api/servers.js';
import { tokensRouter } from './api/tokens.js';
import { groupsRouter } from './api/groups.js';
import { auditRouter } from './api/audit.js';
import { usageRouter } from './api/usage.js';
import { AuditRetention } from './audit/retention.js';
import { UsageSampler } from './usage/sampler.js';
import { refreshUsageMetrics } from './usage/metrics.js';
import { credentialsRouter } from './api/credentials.js';
import { proxyRouter } from './api/proxy.js';
import { authorizationsRouter } from './api/authorizations.js';
import { shutdownRouter } from './api/shutdown.js';
import { createCredentialService } from './credentials/index.js';
import { oauth2Router } from './api/oauth2.js';
import { servicesRouter } from './api/services.js';
import { sharesRouter } from './api/shares.js';
import { syncServiceClients } from './services/oauth-clients.js';
import { authPages } from './pages/auth.js';
import { createSetupLink } from './auth/one-time-links.js';
import { TrustedProxies } from './auth/trusted-proxies.js';
import { serverPages, userUrlAtHub } from './pages/servers.js';
import { tokenPages } from './pages/tokens.js';
import { sharePages } from './pages/shares.js';
import { passwordPages } from './pages/password.js';
import { adminPages } from './pages/admin.js';
import { usagePages } from './pages/usage.js';
import { errorPage, pageErrorHandler, proxyErrorPage } from './pages/errors.js';
import { TEMPLATES_DIR } from './pages/render.js';
import { brandAssets } from './pages/assets.js';
import { ChpProxyClient } from '../proxy/chp-client.js';
import { FanOutProxyClient } from '../proxy/fan-out-client.js';
import { SwitchableProxyClient } from '../proxy/switchable-client.js';
import { ProxySwitch } from './proxy-switch.js';
import type { Spawner } from '../spawners/spawner.js';
import { LocalSpawner } from '../spawners/local.js';
import { InstantSpawner } from '../spawners/instant.js';
import type { DockerSpawner } from '../spawners/docker.js';
import { readFileSync } from 'node:fs';
import { createAuthenticator } from '../authenticators/index.js';
import { AuthStateVault, parseCryptKeys } from './auth/auth-state.js';
import { authStateForSpawn } from './auth/spawn-auth-state.js';
import { loginThrottleFrom } from './auth/login-throttle.js';
import { classBounds } from './classes/bounds.js';
import { ClassGuard } from './classes/guard.js';
import { RouteRevocations } from './servers/route-revocations.js';



export interface Hub {
  ctx: HubContext;
  /** The hub's own HTTP address (behind the proxy). */
  hubUrl: string;
  /** A one-time link to create the first admin, when the hub has no admin yet. */
  setupUrl: string | null;
  close(options?: { stopProxy?: boolean }): Promise<void>;
}

export interface HubOptions {
  log?: Logger;
  /** Replaces the configured spawner (tests and benchmarks). */
  spawner?: Spawner;
  /** Called by `POST /shutdown`; the caller stops the hub (labhub start does). */
  onShutdownRequest?: HubContext['requestShutdown'];
}

/**
 * The container spawners are loaded only when configured: the Kubernetes client alone took half a second of every
 * start-up and loaded 800 files (docs/performance.md).
 */
async function createSpawner(config: LabHubConfig, log: Logger): Promise<Spawner> {
  const s = config.spawner;
  if (s.kind === 'instant') return new InstantSpawner();
  if (s.kind === 'docker') return createDockerSpawner(config, log);
  if (s.kind === 'kubernetes') return (await import('../spawners/kubernetes/config.js')).createKubernetesSpawner(config, log);
  if (process.getuid?.() === 0 && s.run_as_system_users && !s.allow_root) {
    log.warn('local spawner under a root hub: each server runs as the system account named like its user, so a user ' +
      'without one cannot start a server; create accounts (useradd --create-home NAME), or use the Docker spawner (spawner.kind: docker)');
  } else if (process.getuid?.() !== 0 || !s.run_as_system_users) {
    log.warn('local spawner: every server runs as the hub\'s own OS user, so users are not isolated from each other ' +
      'or from the hub\'s data dir; run the hub as root with system accounts, or use a container spawner, for untrusted users');
  }
  return new LocalSpawner({
    cmd: s.cmd, args: s.args, ip: s.ip, dataDir: config.data_dir, envKeep: s.env_keep, environment: s.environment,
    logger: log.child({ component: 'spawner' }), runAsSystemUsers: s.run_as_system_users, allowRoot: s.allow_root,
  });
}

async function createDockerSpawner(config: LabHubConfig, log: Logger): Promise<DockerSpawner> {
  const { DockerSpawner, engineOptionsFromUrl } = await import('../spawners/docker.js');
  const d = config.spawner.docker;
  const engine = d.host ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const tls = d.tls && {
    ca: readFileSync(d.tls.ca_file, 'utf8'), cert: readFileSync(d.tls.cert_file, 'utf8'), key: readFileSync(d.tls.key_file, 'utf8'),
  };
  return new DockerSpawner({
    ...engineOptionsFromUrl(engine), ...(tls && { tls }),
    image: d.image, allowedImages: d.allowed_images, pullPolicy: d.pull_policy, network: d.network,
    memLimit: d.mem_limit, cpuLimit: d.cpu_limit, pidsLimit: d.pids_limit, removeOnStop: d.remove_on_stop,
    hubConnectUrl: d.hub_connect_url ?? config.hub.connect_url, extraEnv: d.environment, cmd: d.cmd, args: d.args,
    user: d.user, allowRoot: config.spawner.allow_root, homeMountPath: d.home_mount_path,
    volumes: d.volumes.map((v) => ({ source: v.source, target: v.target, type: v.type, readOnly: v.read_only })),
    ...(d.registry_auth && {
      registryAuth: { username: d.registry_auth.username, password: d.registry_auth.password, ...(d.registry_auth.server && { serveraddress: d.registry_auth.server }) },
    }),
    // One key names both: two hubs on one engine never share containers or home volumes.
    hubId: d.hub_id, namePrefix: d.hub_id,
    logger: log.child({ component: 'spawner' }),
  });
}

/** LABHUB_CRYPT_KEY's keys; a hub that is told to keep auth_state refuses to start without them. */
function openAuthStateVault(config: LabHubConfig): AuthStateVault | undefined {
  const keys = parseCryptKeys(process.env.LABHUB_CRYPT_KEY);
  if (!keys && config.auth.auth_state.enabled) {
    throw new ConfigError('auth.auth_state.enabled needs LABHUB_CRYPT_KEY (one or more 32-byte keys; make one with: openssl rand -hex 32)');
  }
  return keys && new AuthStateVault(keys);
}

/** Builds every component from the config, connects them, and starts serving. Decides nothing itself. */
export async function startHub(config: LabHubConfig, options: HubOptions = {}): Promise<Hub> {
  const log = options.log ?? createLogger('labhub', { level: config.log_level });
  const database = await openStateDatabase(config);
  const store = createStore(database.db);
  const secure = config.public_url?.startsWith('https:') ?? false;
  const cookieSecret = loadOrCreateSecret(config.data_dir, COOKIE_SECRET_FILE, process.env.LABHUB_COOKIE_SECRET);
  const proxyToken = config.proxy.auth_token ?? loadOrCreateSecret(config.data_dir, PROXY_TOKEN_FILE, undefined);
  // Where the proxy (and servers) reach the hub: in a container or a pod, 127.0.0.1 is not the hub's address.
  const hubUrl = config.hub.connect_url?.replace(/\/+$/, '')
    ?? `http://${config.hub.ip === '0.0.0.0' || config.hub.ip === '' ? '127.0.0.1' : config.hub.ip}:${config.hub.port}`;
  const metrics = createHubMetrics();
  const tokens = new TokenService(store);
  const sessions = new SessionManager(store, { maxAgeDays: config.cookie_max_age_days, secure });
  const authz = new Authorizer(store, tokens, sessions);
  // Each instance's clients can be pointed elsewhere: PATCH /proxy moves a hub with one instance to a new proxy.
  const proxyInstances = (config.proxy.api_urls ?? [config.proxy.api_url]).map((apiUrl) => ({
    apiUrl,
    client: new SwitchableProxyClient(new ChpProxyClient({ apiUrl, authToken: proxyToken })),
    probe: new SwitchableProxyClient(new ChpProxyClient({ apiUrl, authToken: proxyToken, timeoutMs: 2000, retryDelaysMs: [] })),
  }));
  const fanOut = proxyInstances.length > 1 ? new FanOutProxyClient(proxyInstances, log.child({ component: 'proxy' })) : undefined;
  const proxy = fanOut ?? proxyInstances[0]!.client;
  const spawner = options.spawner ?? await createSpawner(config, log);
  const authenticator = createAuthenticator(config, store, log);
  const authState = openAuthStateVault(config);
  const credentials = await createCredentialService(config.credentials, store, log);
  const classes = new ClassGuard({ store, spawner, bounds: classBounds(config), credentialDefaults: config.credentials.policy, log: log.child({ component: 'classes' }) });
  const servers = new ServerManager(
    {
      store, spawner, proxy, tokens, metrics, log: log.child({ component: 'servers' }), credentials, classes, services: config.services,
      authStateFor: (user) => authStateForSpawn({ store, authenticator, vault: authState, enabled: config.auth.auth_state.enabled }, user),
    },
    {
      startTimeoutMs: config.spawner.start_timeout * 1000, httpTimeoutMs: config.spawner.http_timeout * 1000,
      pollIntervalMs: config.spawner.poll_interval * 1000, concurrentSpawnLimit: config.concurrent_spawn_limit,
      activeServerLimit: config.active_server_limit, hubConnectUrl: hubUrl, publicUrl: config.public_url,
      sharedMountRoot: `${config.spawner.docker.home_mount_path.replace(/\/+$/, '')}/shared`,
    },
  );
  // One supervisor per instance: each one re-syncs its own instance after a restart.
  const supervisors = proxyInstances.map(({ apiUrl, client, probe }) => new ProxySupervisor({
    managed: config.proxy.mode === 'managed', command: config.proxy.command, publicIp: config.ip, publicPort: config.port,
    apiUrl, authToken: proxyToken, hubUrl, checkIntervalMs: config.proxy.check_interval * 1000,
    log: log.child({ component: 'proxy', ...(proxyInstances.length > 1 && { instance: apiUrl }) }), proxy: client,
    probe, resync: () => servers.syncRoutes(hubUrl, client),
    missedChanges: fanOut && (() => fanOut.takeMissed(apiUrl)),
  }));
  const proxySwitch = fanOut ? undefined : new ProxySwitch({
    proxy: proxyInstances[0]!.client, probe: proxyInstances[0]!.probe, current: { apiUrl: config.proxy.api_url, authToken: proxyToken },
    resync: (client) => servers.syncRoutes(hubUrl, client), follow: (apiUrl) => supervisors[0]!.follow(apiUrl), log: log.child({ component: 'proxy' }),
  });
  const ctx: HubContext = {
    config, version: JUPYTERHUB_API_VERSION, store, authz, sessions, tokens, xsrf: new Xsrf(cookieSecret, secure), servers, spawner,
    authenticator, authState, proxy, proxySwitch, metrics, log, hubUrl, credentials, classes, requestShutdown: options.onShutdownRequest,
    loginThrottle: loginThrottleFrom(config.auth.rate_limit), revocations: new RouteRevocations(proxy, log.child({ component: 'proxy' })),
  };

  await syncConfigState(ctx);
  const trustedProxies = TrustedProxies.fromConfig(config, log);
  await trustedProxies.start();
  const app = buildApp(ctx, trustedProxies);
  const server = await listen(app, config.hub.ip, config.hub.port);

  await servers.reconcile();
  // After reconciling: leases of servers a killed hub left half started are now orphans, revoked by this first sweep.
  await credentials.start();
  const auditRetention = new AuditRetention(store, config.audit.retention_days, log);
  await auditRetention.start();
  await startSupervisors(supervisors, log);
  servers.startPolling();
  const usage = new UsageSampler({ store, spawner, manager: servers, log: log.child({ component: 'usage' }) }, {
    sampleIntervalMs: config.usage.sample_interval * 1000, storageIntervalMs: config.usage.storage_interval * 1000, graceMs: config.usage.quota_grace * 1000,
  });
  usage.start();
  const idleCuller = idleCullerFor(config.idle_culling, { store, servers, log: log.child({ component: 'idle-culler' }) });
  idleCuller?.start();

  let setupUrl: string | null = null;
  if (config.authenticator.kind === 'native' && (await store.users.countAdmins()) === 0) {
    setupUrl = `${publicOrigin(config)}/hub/setup?code=${await createSetupLink(store)}`;
  } else {
    await store.invitations.deleteSetupLinks();
  }
  log.info({ url: `http://${config.ip || '0.0.0.0'}:${config.port}/`, hub: hubUrl, version: VERSION }, 'LabHub is running');

  return {
    ctx, hubUrl, setupUrl,
    async close({ stopProxy = true } = {}) {
      trustedProxies.close();
      auditRetention.close();
      await usage.close();
      idleCuller?.close();
      await Promise.all(supervisors.map((supervisor) => supervisor.close(stopProxy)));
      await servers.close();
      await credentials.close();
      await spawner.close?.();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await database.close();
    },
  };
}

/** Services and roles declared in config are the truth: the DB copy is replaced at every start. */
async function syncConfigState(ctx: HubContext): Promise<void> {
  const { store, config, tokens, log } = ctx;
  const roles = buildRoles(config.roles);
  const keep = config.services.map((s) => s.name);
  await store.services.deleteExcept(keep);
  const adminServices = new Set(roles.get(ADMIN_ROLE)?.services);
  for (const service of config.services) {
    const row = await store.services.upsert({ name: service.name, admin: service.admin || adminServices.has(service.name), url: service.url ?? null });
    await store.tokens.deleteForService(row.id);
    if (service.api_token) {
      await tokens.storeSupplied(service.api_token, { owner: { serviceId: row.id }, scopes: ['inherit'], note: `Service ${service.name} (config)` });
    }
  }
  await syncServiceClients(store, config.services, log);
  const declared = [];
  for (const role of roles.values()) {
    if (['user', 'admin', 'server', 'token'].includes(role.name) && !config.roles.some((r) => r.name === role.name)) continue;
    const members: Array<{ kind: 'user' | 'group' | 'service'; id: number }> = [];
    for (const name of role.users.map(normalizeUsername)) {
      const user = await store.users.byName(name) ?? await store.users.create(name);
      members.push({ kind: 'user', id: user.id });
    }
    for (const name of role.groups) {
      const group = await store.groups.byName(name) ?? await store.groups.create(name);
      members.push({ kind: 'group', id: group.id });
    }
    for (const name of role.services) {
      const service = await store.services.byName(name);
      if (!service) {
        log.warn({ role: role.name, service: name }, 'role names a service that is not configured; skipped');
        continue;
      }
      members.push({ kind: 'service', id: service.id });
    }
    declared.push({ name: role.name, description: role.description, scopes: [...role.scopes], members });
  }
  const previousAdmins = await store.roles.memberIds(ADMIN_ROLE, 'user');
  await store.roles.replaceAll(declared);
  const admins = declared.find((r) => r.name === ADMIN_ROLE)?.members.filter((m) => m.kind === 'user').map((m) => m.id) ?? [];
  await syncAdminFlags(store, previousAdmins, admins, log);
}

function securityHeaders(version: string) {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-JupyterHub-Version', version);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
    next();
  };
}

export function buildApp(ctx: HubContext, trustedProxies: TrustedProxies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', (address: string) => trustedProxies.trusts(address));
  app.set('query parser', 'simple');
  app.use(securityHeaders(ctx.version));
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const kind = req.path.startsWith('/hub/api') ? 'api' : req.path.startsWith('/user/') ? 'user' : 'page';
      ctx.metrics.requestDuration.observe({ method: req.method, kind, status: String(res.statusCode) }, (performance.now() - started) / 1000);
      if (res.statusCode >= 500) ctx.log.warn({ method: req.method, path: loggablePath(req.originalUrl), status: res.statusCode }, 'request failed');
    });
    next();
  });

  const health = (_req: Request, res: Response) => void res.status(200).end();
  app.get(['/hub/health', '/hub/api/health'], health);
  app.head(['/hub/health', '/hub/api/health'], health);

  const api = express.Router();
  api.use('/oauth2', express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }), express.json({ limit: '64kb' }));
  api.use(oauth2Router(ctx));
  // JupyterHub reads API bodies as JSON whatever their Content-Type; so do we, within 1 MB (GET and HEAD have none).
  api.use(express.json({ limit: '1mb', type: (req) => req.method !== 'GET' && req.method !== 'HEAD' }));
  api.use((req, _res, next) => {
    next(jsonDepth(req.body) > MAX_JSON_DEPTH ? new HttpError(400, `Request body is nested more than ${MAX_JSON_DEPTH} levels deep`) : undefined);
  });
  api.use(authenticateApi(ctx));
  api.use(rootRouter(ctx), sharesRouter(ctx), usersRouter(ctx), serversRouter(ctx), tokensRouter(ctx), groupsRouter(ctx), credentialsRouter(ctx), proxyRouter(ctx),
    authorizationsRouter(ctx), shutdownRouter(ctx), auditRouter(ctx), servicesRouter(ctx), usageRouter(ctx));
  api.use(apiNotFound);
  api.use(apiErrorHandler(ctx.log));
  app.use('/hub/api', (_req, res, next) => {
    res.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
    next();
  }, api);

  app.get(['/hub/metrics'], async (req, res) => {
    if (ctx.config.authenticate_prometheus) {
      const token = ctx.authz.headerToken(req);
      const requester = token ? await ctx.authz.fromToken(token) : await ctx.authz.fromSession(req);
      if (!requester || !(await ctx.authz.allows(requester, ['read:metrics']))) {
        res.status(403).json({ status: 403, message: 'read:metrics is required' });
        return;
      }
    }
    ctx.metrics.users.set(await ctx.store.users.count());
    ctx.metrics.runningServers.set(await ctx.store.servers.countByStatus('running'));
    await refreshUsageMetrics(ctx);
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  app.use(brandAssets());
  app.use('/hub/static', express.static(`${TEMPLATES_DIR}static`, { maxAge: '1h', index: false }));
  app.get('/hub/error/:code', proxyErrorPage);

  const pages = express.Router();
  pages.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }));
  pages.use(authPages(ctx), serverPages(ctx), sharePages(ctx), tokenPages(ctx), passwordPages(ctx), adminPages(ctx), usagePages(ctx));
  app.use('/hub', pages);
  app.get('/', (_req, res) => res.redirect(302, '/hub/home'));
  app.all('/user/{*rest}', userUrlAtHub());
  app.use((_req, res) => void res.status(404).send(errorPage(404, 'Nothing is served at this address.')));
  app.use(pageErrorHandler(ctx.log));
  return app;
}

function listen(app: Express, ip: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.listen(port, ip || undefined);
    server.once('listening', () => resolve(server));
    server.once('error', reject);
    // Event streams of spawn progress stay open for minutes; the default request timeout would cut them.
    server.requestTimeout = 0;
    server.keepAliveTimeout = 65_000;
  });
}

/**
 * The hub starts when at least one proxy instance answers; the others are watched and re-synced once they do,
 * so one lost replica does not keep the hub (and every user) out.
 */
async function startSupervisors(supervisors: ProxySupervisor[], log: Logger): Promise<void> {
  const results = await Promise.allSettled(supervisors.map((supervisor) => supervisor.start()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length === results.length) {
    await Promise.all(supervisors.map((supervisor) => supervisor.close(false)));
    throw failed[0]!.reason;
  }
  for (const failure of failed) log.warn({ err: (failure.reason as Error).message }, 'a proxy instance is not answering; it is re-synced when it does');
}
