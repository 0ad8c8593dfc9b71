import { z } from 'zod';
import { authSchema } from './auth-schema.js';
import { policySchema } from '../credentials/policy.js';
import { proxyEntryProblem } from '../auth/trusted-proxies.js';
import { classesConfigSchema } from '../classes/bounds.js';
import { blockedPortProblem } from '../fetch-ports.js';
import { fetchedUrl, url } from './fields.js';

/**
 * Every configuration key, its type, default and bounds, in one place.
 * The same schema gives the runtime check and the TypeScript type (`LabHubConfig`).
 * Unknown keys are errors so that a typo never silently falls back to a default.
 */
const port = z.number().int().min(1).max(65535);
/** A duration that must be positive: zero would make every spawn time out, or a check loop spin. */
const positiveSeconds = z.number().min(0.1).max(86_400 * 366);

/** An externally managed service (JupyterHub's `c.JupyterHub.services` entry without `command`): docs/services.md. */
const serviceSchema = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/, 'expected a service name of letters, digits, ., _ or -'),
  /** Its API token, and the client secret of its OAuth client. */
  api_token: z.string().min(8, 'a service api_token needs at least 8 characters').optional(),
  admin: z.boolean().default(false),
  /** Where the proxy sends /services/<name>/. */
  url: url.refine((u) => /^https?:$/.test(new URL(u).protocol), 'expected an http:// or https:// URL').optional(),
  display: z.boolean().default(true),
  /** Free-form facts shown in its model (`info`). */
  info: z.record(z.string(), z.unknown()).default({}),
  /** Default `service-<name>`. Server clients are `jupyterhub-user-…`, so that prefix is refused. */
  oauth_client_id: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/, 'expected letters, digits, ., _ or -')
    .refine((id) => !id.startsWith('jupyterhub-user-'), 'jupyterhub-user-… names the OAuth clients of servers').optional(),
  /** Default `/services/<name>/oauth_callback` when `url` is set; an absolute URL for a service outside the proxy. */
  oauth_redirect_uri: z.string().max(2000).refine((u) => u.startsWith('/') ? !u.startsWith('//') : /^https?:\/\//.test(u) && URL.canParse(u), 'expected a path or an http(s) URL').optional(),
  /** Scopes the service may ask users for beyond identifying them (JupyterHub's `oauth_client_allowed_scopes`). */
  oauth_client_allowed_scopes: z.array(z.string().max(300)).max(100).default([]),
  /** Skip the consent page: for services the admin runs and users trust like the hub. */
  oauth_no_confirm: z.boolean().default(false),
});

const roleSchema = z.strictObject({
  name: z.string(),
  description: z.string().default(''),
  scopes: z.array(z.string()).default([]),
  users: z.array(z.string()).default([]),
  groups: z.array(z.string()).default([]),
  services: z.array(z.string()).default([]),
});

const TEMPLATE_MESSAGE = 'only {username} and {servername} may be templated';
const onlyNameFields = (s: string) => [...s.matchAll(/\{([^}]*)\}/g)].every((m) => m[1] === 'username' || m[1] === 'servername');

/** spawner.docker: see docs/docker.md. */
const dockerSchema = z.strictObject({
  /** The engine: `unix:///path` or `tcp://host:port`; default DOCKER_HOST, else the local socket. */
  host: z.string().regex(/^(unix:\/\/\/|tcp:\/\/|https?:\/\/|\/)/, 'expected unix:///path or tcp://host:port').optional(),
  /** PEM files for a TLS engine (tcp://…:2376). */
  tls: z.strictObject({ ca_file: z.string(), cert_file: z.string(), key_file: z.string() }).optional(),
  image: z.string().min(1).default('labhub/notebook-debian:latest'),
  /** Other images users may choose with the user option `image`. */
  allowed_images: z.array(z.string().min(1)).default([]),
  pull_policy: z.enum(['never', 'if-not-present', 'always']).default('if-not-present'),
  network: z.string().min(1).default('bridge'),
  /** Bytes, or `512m`, `2g` as `docker run --memory`. */
  mem_limit: z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?[kmgKMG]?$/, 'expected bytes or e.g. 512m, 2g')]).optional(),
  cpu_limit: z.number().positive().max(1024).optional(),
  /** 0 means no limit. */
  pids_limit: z.number().int().min(0).default(1024),
  remove_on_stop: z.boolean().default(true),
  /** How containers reach the hub's API, e.g. http://172.17.0.1:8081; default hub.connect_url. */
  hub_connect_url: url.optional(),
  environment: z.record(z.string(), z.string()).default({}),
  /** Command; default the image's. */
  cmd: z.array(z.string()).min(1).optional(),
  args: z.array(z.string()).default([]),
  user: z.string().regex(/^\d+:\d+$/, 'expected uid:gid').default('1000:1000'),
  home_mount_path: z.string().startsWith('/').default('/home/jovyan'),
  /**
   * Extra mounts for every container. `{username}` and `{servername}` are replaced with escaped names that cannot
   * contain `/` or `..`. A host path needs `type: bind`: the admin says so explicitly.
   */
  volumes: z.array(z.strictObject({
    source: z.string().min(1).max(4096).refine(onlyNameFields, TEMPLATE_MESSAGE),
    target: z.string().startsWith('/').max(4096).refine(onlyNameFields, TEMPLATE_MESSAGE),
    type: z.enum(['volume', 'bind']).default('volume'),
    read_only: z.boolean().default(false),
  })).default([]),
  /** Private registry login for pulls; the password may come from LABHUB_SPAWNER__DOCKER__REGISTRY_AUTH__PASSWORD. */
  registry_auth: z.strictObject({
    username: z.string().min(1),
    password: z.string().min(1),
    server: z.string().min(1).optional(),
  }).optional(),
  /** Marks this hub's containers on a shared engine; containers with it that the DB does not know are removed at start. */
  hub_id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'expected lower-case letters, digits, ., _ or -').default('labhub'),
});

const quantity = z.string().regex(/^\d+(\.\d+)?([EPTGMK]i?|[mkun])?$/, 'expected a Kubernetes quantity, e.g. 500m, 2Gi');
const resourcesSchema = z.strictObject({
  requests: z.record(z.string(), quantity).optional(),
  limits: z.record(z.string(), quantity).optional(),
});
const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a DNS label: lower-case letters, digits and -');
const kubePodFields = {
  image: z.string().min(1),
  pull_policy: z.enum(['IfNotPresent', 'Always', 'Never']),
  image_pull_secrets: z.array(dnsName),
  cmd: z.array(z.string()).min(1),
  args: z.array(z.string()),
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'), z.string()),
  resources: resourcesSchema,
  node_selector: z.record(z.string(), z.string()),
  tolerations: z.array(z.strictObject({
    key: z.string().optional(), operator: z.enum(['Exists', 'Equal']).optional(), value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(), toleration_seconds: z.number().int().optional(),
  })),
  /** Shared volumes (e.g. a class's data), PVCs that already exist. */
  volumes: z.array(z.strictObject({
    name: dnsName, claim_name: dnsName, mount_path: z.string().startsWith('/'), read_only: z.boolean().default(false), sub_path: z.string().optional(),
  })),
  /** Deep-merged into the pod spec last (objects merge, null deletes, arrays replace). */
  extra_pod_spec: z.record(z.string(), z.unknown()),
};

/** spawner.kubernetes: see docs/kubernetes.md. */
const kubernetesSchema = z.strictObject({
  /** Path of a kubeconfig; default KUBECONFIG, ~/.kube/config, else the in-cluster service account. */
  kubeconfig: z.string().optional(),
  /** Default: the in-cluster service account's namespace, else `default`. */
  namespace: dnsName.optional(),
  image: kubePodFields.image.default('labhub/notebook-debian:latest'),
  pull_policy: kubePodFields.pull_policy.default('IfNotPresent'),
  image_pull_secrets: kubePodFields.image_pull_secrets.default([]),
  cmd: kubePodFields.cmd.optional(),
  args: kubePodFields.args.default([]),
  environment: kubePodFields.environment.default({}),
  resources: kubePodFields.resources.default({}),
  node_selector: kubePodFields.node_selector.default({}),
  tolerations: kubePodFields.tolerations.default([]),
  volumes: kubePodFields.volumes.default([]),
  extra_pod_spec: kubePodFields.extra_pod_spec.default({}),
  uid: z.number().int().min(1).default(1000),
  gid: z.number().int().min(0).default(1000),
  fs_gid: z.number().int().min(0).default(1000),
  home_mount_path: z.string().startsWith('/').default('/home/jovyan'),
  service_account: dnsName.optional(),
  storage: z.strictObject({
    enabled: z.boolean().default(true),
    capacity: quantity.default('10Gi'),
    storage_class: z.string().optional(),
    access_modes: z.array(z.enum(['ReadWriteOnce', 'ReadWriteMany', 'ReadOnlyMany', 'ReadWriteOncePod'])).min(1).default(['ReadWriteOnce']),
  }).prefault({}),
  /** Choices users make with the user option `profile`; `groups` limits one to members of those groups (classes). */
  profiles: z.array(z.strictObject({
    slug: dnsName,
    display_name: z.string().min(1),
    description: z.string().optional(),
    default: z.boolean().default(false),
    groups: z.array(z.string()).default([]),
    /** Same keys as spawner.kubernetes (pod fields); deep-merged over them. */
    overrides: z.strictObject(Object.fromEntries(Object.entries(kubePodFields).map(([k, v]) => [k, v.nullable().optional()]))).default({}),
  })).default([]),
  /** How pods reach the hub's API, e.g. http://labhub-hub:8081; default hub.connect_url. */
  hub_connect_url: url.optional(),
  /** Marks this hub's pods; pods with it that the DB does not know are removed at start. Also the name prefix. */
  hub_id: dnsName.default('labhub'),
  delete_grace_period: z.number().int().min(0).max(3600).default(1),
});

/** credentials.<service>: see docs/credentials.md. Admin URLs hold secrets: set them with LABHUB_CREDENTIALS__… variables. */
const brokerSchema = (schemes: string[]) => z.strictObject({
  /** The hub's admin connection (with its credentials). */
  admin_url: url.refine((s) => schemes.includes(new URL(s).protocol), `expected a ${schemes.join(' or ')} URL`),
  /** Where notebook servers connect, without credentials; default admin_url without them. */
  connect_url: url.refine((s) => schemes.includes(new URL(s).protocol), `expected a ${schemes.join(' or ')} URL`).optional(),
  /** A required service that cannot issue fails the spawn; an optional one is skipped with a progress message. */
  required: z.boolean().default(false),
});

const credentialsSchema = z.strictObject({
  /** Seconds a lease lives unless renewed; leases of running servers are renewed past half their life. */
  ttl: z.number().int().min(10).max(86_400 * 30).default(3600),
  /** Seconds between sweeps (renewal, revocation of expired and orphaned leases, retries). */
  sweep_interval: z.number().min(0.5).max(86_400).default(60),
  /** Seconds to wait for a service's answer. */
  timeout: positiveSeconds.default(10),
  mqtt: brokerSchema(['mqtt:', 'mqtts:']).optional(),
  postgres: brokerSchema(['postgres:', 'postgresql:']).optional(),
  mongodb: brokerSchema(['mongodb:']).extend({
    /**
     * roles: MongoDB roles on each account; gate: grants that LabHub's mongo-gate enforces in front of a server
     * without roles (FerretDB 1.x refuses createUser with roles); none: accounts only authenticate. See docs/credentials.md.
     */
    authorization: z.enum(['roles', 'gate', 'none']).default('roles'),
  }).refine((m) => m.authorization !== 'gate' || m.connect_url !== undefined, {
    path: ['connect_url'], message: 'with authorization: gate, set connect_url to the gate (notebooks must not reach the server itself)',
  }).optional(),
  /** Least-privilege defaults; a class (group) overrides them with its property `credentials`. */
  policy: policySchema.prefault({}),
}).prefault({});

/** Idle timeout when `idle_culling.timeout` is not set: one hour, Zero to JupyterHub's `cull.timeout`. */
export const IDLE_TIMEOUT_DEFAULT = 3600;

/**
 * idle_culling: see docs/idle-culling.md. `timeout` has no schema default: set explicitly with `enabled: false`, it
 * turns on only the warnings, for a lab whose external jupyterhub-idle-culler uses the same --timeout.
 */
const idleCullingSchema = z.strictObject({
  enabled: z.boolean().default(false),
  timeout: z.number().min(1).max(86_400 * 366).optional(),
  warn_before: z.number().min(0).max(86_400 * 366).default(600),
  check_interval: z.number().min(1).max(3600).default(60),
}).superRefine((idle, ctx) => {
  const timeout = idle.timeout ?? IDLE_TIMEOUT_DEFAULT;
  if (idle.warn_before >= timeout) {
    ctx.addIssue({
      code: 'custom', path: ['warn_before'],
      message: `must be less than idle_culling.timeout (${timeout} s${idle.timeout === undefined ? ', its default' : ''}): the warning starts warn_before seconds before the cull`,
    });
  }
});

export const configSchema = z.strictObject({
  /** Public port of the proxy: where browsers and scripts connect. */
  port: port.superRefine((p, ctx) => {
    const problem = blockedPortProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).default(8000),
  /** Public bind address of the proxy; empty means every interface. */
  ip: z.string().default(''),
  /** Where the state DB and generated secrets live. */
  data_dir: z.string().min(1).default('./data'),
  /** `sqlite:<path>` (relative to data_dir) or `postgres://…`. */
  db_url: z
    .string()
    .refine((s) => s.startsWith('sqlite:') || s.startsWith('postgres://') || s.startsWith('postgresql://'), {
      message: 'expected sqlite:<path> or postgres://…',
    })
    .default('sqlite:labhub.sqlite'),
  /** Public origin when behind TLS termination, e.g. https://hub.example.org; makes cookies Secure. */
  public_url: fetchedUrl.optional(),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  hub: z
    .strictObject({
      ip: z.string().default('127.0.0.1'),
      port: port.default(8081),
      /** How notebook servers reach the hub's API, if not http://<hub.ip>:<hub.port>. */
      connect_url: url.optional(),
      /**
       * Proxies in front of the hub whose X-Forwarded-For is believed, besides the managed proxy (loopback) and the
       * proxy.api_url(s) hosts: IP addresses, CIDR blocks or host names (see hub/auth/trusted-proxies.ts).
       */
      trusted_proxies: z.array(z.string().max(253).superRefine((entry, ctx) => {
        const problem = proxyEntryProblem(entry);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })).max(64).default([]),
    })
    .prefault({}),
  proxy: z
    .strictObject({
      /** managed: the hub starts the proxy as a child and restarts it; external: the hub only talks to its API. */
      mode: z.enum(['managed', 'external']).default('managed'),
      api_url: fetchedUrl.default('http://127.0.0.1:8001'),
      /**
       * Several proxy instances serving the same routes (replicas behind one address), all kept in sync; replaces
       * `api_url`. Needs `mode: external`: the instances are started by whatever runs them, not by the hub.
       */
      api_urls: z.array(fetchedUrl).min(1).max(16).optional(),
      /** Shared secret for the proxy API; generated into data_dir when unset. Env: CONFIGPROXY_AUTH_TOKEN. */
      auth_token: z.string().min(16).optional(),
      /** Command that starts the proxy in managed mode (CHP-compatible flags are appended). Default: LabHub's own. */
      command: z.array(z.string()).min(1).optional(),
      /** How often the hub checks the proxy is alive, and re-syncs its routes after a restart. */
      check_interval: z.number().min(0.5).max(3600).default(5),
    })
    .refine((proxy) => proxy.api_urls === undefined || proxy.mode === 'external', {
      message: 'proxy.api_urls needs proxy.mode: external (the hub starts at most one proxy itself)',
      path: ['api_urls'],
    })
    .prefault({}),
  authenticator: z
    .strictObject({
      kind: z.enum(['native', 'dummy', 'pam', 'ldap', 'oidc']).default('native'),
      admin_users: z.array(z.string()).default([]),
      allowed_users: z.array(z.string()).default([]),
      blocked_users: z.array(z.string()).default([]),
      /** dummy only: a shared password; without it any password is accepted (demos and tests only). */
      password: z.string().optional(),
      /** native: minimum password length for accounts the hub manages. */
      minimum_password_length: z.number().int().min(1).max(1024).default(8),
    })
    .prefault({}),
  /** Identity sources (pam, ldap, oidc), groups, login rate limits and auth_state: see docs/config.md "auth". */
  auth: authSchema.prefault({}),
  spawner: z
    .strictObject({
      kind: z.enum(['local', 'docker', 'instant', 'kubernetes']).default('local'),
      cmd: z.array(z.string()).min(1).default(['jupyterhub-singleuser']),
      args: z.array(z.string()).default([]),
      ip: z.string().default('127.0.0.1'),
      environment: z.record(z.string(), z.string()).default({}),
      env_keep: z.array(z.string()).optional(),
      /** Seconds for the spawner to start the server process. */
      start_timeout: positiveSeconds.default(60),
      /** Seconds for the started server to answer HTTP. */
      http_timeout: positiveSeconds.default(30),
      /** Seconds between checks that running servers are still alive. */
      poll_interval: z.number().min(1).max(86_400).default(30),
      /** local: run as the matching system account when the hub runs as root. */
      run_as_system_users: z.boolean().default(true),
      /** local: allow servers to run as root (a root hub without matching system accounts, e.g. in a container). */
      allow_root: z.boolean().default(false),
      docker: dockerSchema.prefault({}),
      kubernetes: kubernetesSchema.prefault({}),
    })
    .prefault({}),
  /** Spawns in progress at once; more answer 429. */
  concurrent_spawn_limit: z.number().int().min(0).default(100),
  /** Running servers in all; 0 means no limit. */
  active_server_limit: z.number().int().min(0).default(0),
  allow_named_servers: z.boolean().default(false),
  named_server_limit_per_user: z.number().int().min(0).default(0),
  cookie_max_age_days: z.number().positive().max(366).default(14),
  /** Longest lifetime of an API token in seconds; 0 means no limit. */
  token_expires_in_max_seconds: z.number().int().min(0).default(0),
  /** Seconds an OAuth access token issued to a notebook server lives. */
  oauth_token_expires_in: z.number().int().min(60).max(86_400 * 366).default(14 * 86_400),
  services: z.array(serviceSchema).default([])
    .refine((list) => new Set(list.flatMap((s) => s.api_token ?? [])).size === list.filter((s) => s.api_token).length, 'two services share an api_token')
    .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'two services share a name')
    .refine((list) => new Set(list.map((s) => s.oauth_client_id ?? `service-${s.name}`)).size === list.length, 'two services share an oauth_client_id'),
  roles: z.array(roleSchema).default([]),
  credentials: credentialsSchema,
  /** What a class may grant (images, shared volumes, limits, credentials, members): see docs/classes.md. */
  classes: classesConfigSchema.prefault({}),
  /** Prometheus metrics at /hub/metrics require read:metrics unless this is false. */
  authenticate_prometheus: z.boolean().default(true),
  /** Usage accounting and quotas (docs/usage.md). */
  usage: z.strictObject({
    /** Seconds between usage samples of running servers and quota sweeps. */
    sample_interval: z.number().min(1).max(86_400).default(60),
    /** Seconds between measurements of home sizes (Docker walks every volume to answer). */
    storage_interval: z.number().min(60).max(86_400 * 7).default(3600),
    /** Seconds a server that used up a quota keeps running after the warning. */
    quota_grace: z.number().min(0).max(86_400 * 7).default(900),
  }).prefault({}),
  /** Stopping servers nobody uses, and warning their users first: docs/idle-culling.md. */
  idle_culling: idleCullingSchema.prefault({}),
  /** The audit log (docs/audit.md): records older than retention_days are pruned hourly; 0 keeps them forever. */
  audit: z.strictObject({ retention_days: z.number().int().min(0).max(36_500).default(365) }).prefault({}),
});

export type LabHubConfig = z.infer<typeof configSchema>;
export type ServiceConfig = z.infer<typeof serviceSchema>;
export type RoleConfig = z.infer<typeof roleSchema>;
export type CredentialsConfig = z.infer<typeof credentialsSchema>;
export type IdleCullingConfig = z.infer<typeof idleCullingSchema>;
