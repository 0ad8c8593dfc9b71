/**
 * The proxy as a process: `node dist/proxy/main.js [flags]`, with configurable-http-proxy's flags, so JupyterHub's
 * ConfigurableHTTPProxy and LabHub's hub can start either one. `startProxy` is the same thing in-process.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../hub/log.js';
import { availableParallelism } from 'node:os';
import { createApiServer } from './api.js';
import { isProxyWorker, runProxyWorker, startCluster } from './cluster.js';
import { customHeaderProblem } from './headers.js';
import { ProxyMetrics } from './metrics.js';
import { RouteTable, parseTarget } from './routes.js';
import { createProxyServer, type Pem, type ProxyServerHandle, type ProxyServerOptions, type TargetTlsOptions, type TlsOptions } from './server.js';

export interface StartProxyOptions extends Omit<ProxyServerOptions, 'routes' | 'metrics' | 'log'> {
  /** Public bind address; empty: every interface. */
  ip?: string;
  /** Public port; 0 picks a free one. Default 8000. */
  port?: number;
  apiIp?: string;
  /** Default: `port + 1`, or a free one when `port` is 0. */
  apiPort?: number;
  /** Required on the API as `Authorization: token <authToken>`; the API is open without it. */
  authToken?: string;
  apiTls?: TlsOptions;
  log?: Logger;
  /** Export Node process metrics (CPU, memory, event loop) on `/metrics`. */
  processMetrics?: boolean;
}

export interface RunningProxy {
  proxy: ProxyServerHandle;
  apiServer: http.Server | https.Server;
  routes: RouteTable;
  /** Where the public server listens, e.g. `http://127.0.0.1:8000`, with the actual port. */
  publicUrl: string;
  /** Where the API listens, e.g. `http://127.0.0.1:8001`. */
  apiUrl: string;
  close(): Promise<void>;
}

export async function startProxy(options: StartProxyOptions = {}): Promise<RunningProxy> {
  const { ip = '', port = 8000, apiIp = '127.0.0.1', apiPort: requestedApiPort, authToken, apiTls, log: givenLog, processMetrics = false, ...serverOptions } =
    options;
  const apiPort = requestedApiPort ?? (port === 0 ? 0 : port + 1);
  const log = givenLog ?? createLogger('labhub-proxy');
  const routes = new RouteTable();
  const metrics = new ProxyMetrics({ routes, processMetrics });
  const proxy = createProxyServer({ ...serverOptions, routes, metrics, log });
  const apiServer = createApiServer({ routes, metrics, authToken, log, tls: apiTls });
  try {
    await listen(proxy.server, port, ip);
    await listen(apiServer, apiPort, apiIp);
  } catch (err) {
    await Promise.all([proxy.close(0), closeServer(apiServer)]);
    throw err;
  }
  return {
    proxy,
    apiServer,
    routes,
    publicUrl: serverUrl(proxy.server, options.tls ? 'https' : 'http'),
    apiUrl: serverUrl(apiServer, apiTls ? 'https' : 'http'),
    async close() {
      await Promise.all([proxy.close(), closeServer(apiServer)]);
    },
  };
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    (server as http.Server).closeAllConnections();
  });
}

/** A URL a local client can use: wildcard addresses become loopback. */
function serverUrl(server: net.Server, scheme: string): string {
  const { address, port } = server.address() as net.AddressInfo;
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `${scheme}://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

const USAGE = `Usage: labhub proxy [options]

LabHub's proxy, compatible with configurable-http-proxy. The API token is read from CONFIGPROXY_AUTH_TOKEN;
without it the API is not authenticated.

Options:
  --ip <address>              public bind address (default: every interface; '*' means the same)
  --port <n>                  public port (default 8000; 0 picks a free port)
  --api-ip <address>          API bind address (default 127.0.0.1)
  --api-port <n>              API port (default: --port + 1)
  --default-target <url>      target of the root route /
  --error-target <url>        error pages from GET <url>/<code>?url=<request url>
  --ssl-key <file>            serve HTTPS with this key (needs --ssl-cert)
  --ssl-cert <file>           certificate for --ssl-key
  --ssl-ca <file>             CA certificates (PEM) that client certificates must chain to
  --ssl-request-cert          require a client certificate; clients without a valid one are refused
  --ssl-reject-unauthorized   accepted as in CHP: refusing them is already what --ssl-request-cert does
  --api-ssl-key <file>        serve the API over HTTPS with this key (needs --api-ssl-cert)
  --api-ssl-cert <file>       certificate for --api-ssl-key
  --api-ssl-ca <file>, --api-ssl-request-cert, --api-ssl-reject-unauthorized
                              the same as --ssl-ca and the others, for the API
  --client-ssl-key <file>     key of the client certificate shown to https targets (needs --client-ssl-cert)
  --client-ssl-cert <file>    certificate for --client-ssl-key
  --client-ssl-ca <file>      CA certificates (PEM) that https targets' certificates must chain to
  --client-ssl-request-cert, --client-ssl-reject-unauthorized
                              accepted as in CHP (JupyterHub passes them), no effect: targets are verified
                              unless --insecure
  --insecure                  do not verify https targets' certificates
  --custom-header <name:value>
                              set this header on every proxied request, replacing the client's (repeatable)
  --log-level <level>         trace, debug, info, warn, error, fatal or silent (default info)
  --timeout <ms>              idle timeout of incoming requests (default: none)
  --proxy-timeout <ms>        how long to wait for a target's response (default: none)
  --keep-alive-timeout <ms>   idle time of client keep-alive connections (default 5000)
  --no-x-forward              do not add X-Forwarded-* headers
  --no-prepend-path           do not prefix the target's path to forwarded paths
  --no-include-prefix         strip the matched route prefix from forwarded paths
  --workers <n|auto>          worker processes sharing the public port (default 1; auto: one per core)
  -h, --help                  show this help
`;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const MAX_TIMER_MS = 2 ** 31 - 1;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

const CLI_OPTIONS = {
  ip: { type: 'string' },
  port: { type: 'string' },
  'api-ip': { type: 'string' },
  'api-port': { type: 'string' },
  'default-target': { type: 'string' },
  'error-target': { type: 'string' },
  'ssl-key': { type: 'string' },
  'ssl-cert': { type: 'string' },
  'api-ssl-key': { type: 'string' },
  'api-ssl-cert': { type: 'string' },
  'ssl-ca': { type: 'string' },
  'ssl-request-cert': { type: 'boolean' },
  'ssl-reject-unauthorized': { type: 'boolean' },
  'api-ssl-ca': { type: 'string' },
  'api-ssl-request-cert': { type: 'boolean' },
  'api-ssl-reject-unauthorized': { type: 'boolean' },
  'client-ssl-key': { type: 'string' },
  'client-ssl-cert': { type: 'string' },
  'client-ssl-ca': { type: 'string' },
  'client-ssl-request-cert': { type: 'boolean' },
  'client-ssl-reject-unauthorized': { type: 'boolean' },
  insecure: { type: 'boolean' },
  'custom-header': { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  timeout: { type: 'string' },
  'proxy-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'no-x-forward': { type: 'boolean' },
  'no-prepend-path': { type: 'boolean' },
  'no-include-prefix': { type: 'boolean' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A flag with a value the proxy cannot use; the CLI exits with status 2. */
class UsageError extends Error {}

type CliFlags = ReturnType<typeof parseArgs<{ options: typeof CLI_OPTIONS; strict: true }>>['values'];

function parseFlags(argv: string[]): CliFlags {
  try {
    return parseArgs({ args: argv, options: CLI_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function portFlag(name: string, value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) throw new UsageError(`--${name} must be a port number from 0 to 65535, got '${value}'`);
  return port;
}

function msFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(ms <= MAX_TIMER_MS)) throw new UsageError(`--${name} must be a number of milliseconds, got '${value}'`);
  return ms;
}

function workersFlag(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  const workers = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(workers >= 1 && workers <= 256)) throw new UsageError(`--workers must be a number from 1 to 256 or 'auto', got '${value}'`);
  return workers;
}

function addressFlag(name: string, value: string): string {
  if (value === '*' || value === '') return '';
  if (net.isIP(value) || HOSTNAME.test(value)) return value;
  throw new UsageError(`--${name} must be an IP address or a host name, got '${value}'`);
}

function urlFlag(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!parseTarget(value)) throw new UsageError(`--${name} must be an absolute http or https URL, got '${value}'`);
  return value;
}

/**
 * HTTPS of the public server (`ssl`) or the API (`api-ssl`). The CA and client-certificate flags only mean something
 * on an HTTPS server, so without its key and certificate they are refused rather than silently ignored.
 */
function servingTlsFlags(prefix: 'ssl' | 'api-ssl', flags: CliFlags): TlsOptions | undefined {
  const key = flags[`${prefix}-key`];
  const cert = flags[`${prefix}-cert`];
  const requestCert = flags[`${prefix}-request-cert`];
  const rejectUnauthorized = flags[`${prefix}-reject-unauthorized`];
  if (key === undefined && cert === undefined) {
    const needless = (['ca', 'request-cert', 'reject-unauthorized'] as const).find((flag) => flags[`${prefix}-${flag}`] !== undefined);
    if (needless) throw new UsageError(`--${prefix}-${needless} needs --${prefix}-key and --${prefix}-cert`);
    return undefined;
  }
  if (key === undefined) throw new UsageError(`--${prefix}-cert needs --${prefix}-key`);
  if (cert === undefined) throw new UsageError(`--${prefix}-key needs --${prefix}-cert`);
  if (rejectUnauthorized && !requestCert) throw new UsageError(`--${prefix}-reject-unauthorized needs --${prefix}-request-cert`);
  // Left undefined unless given, Node's default applies: a server that requests certificates refuses bad ones (CHP's behaviour).
  return { ...keyPairFlags(`${prefix}-key`, `${prefix}-cert`, key, cert), ca: caFlag(`${prefix}-ca`, flags[`${prefix}-ca`]), requestCert, rejectUnauthorized };
}

/**
 * TLS towards https targets. `--client-ssl-request-cert` and `--client-ssl-reject-unauthorized` configure a server in
 * CHP's options and nothing in its client, so they change nothing here either: targets are verified unless --insecure.
 */
function targetTlsFlags(flags: CliFlags): TargetTlsOptions | undefined {
  const key = flags['client-ssl-key'];
  const cert = flags['client-ssl-cert'];
  const ca = flags['client-ssl-ca'];
  if (flags.insecure && flags['client-ssl-reject-unauthorized']) {
    throw new UsageError('--insecure turns off what --client-ssl-reject-unauthorized asks for; give one of them');
  }
  if (key === undefined && cert === undefined && ca === undefined && !flags.insecure) return undefined;
  if (key === undefined && cert !== undefined) throw new UsageError('--client-ssl-cert needs --client-ssl-key');
  if (cert === undefined && key !== undefined) throw new UsageError('--client-ssl-key needs --client-ssl-cert');
  return {
    ...(key !== undefined && cert !== undefined ? keyPairFlags('client-ssl-key', 'client-ssl-cert', key, cert) : {}),
    ca: caFlag('client-ssl-ca', ca),
    rejectUnauthorized: !flags.insecure,
  };
}

/** Both files, checked to be a PEM key and certificate that belong together. */
function keyPairFlags(keyFlag: string, certFlag: string, keyFile: string, certFile: string): { key: Buffer; cert: Buffer } {
  const key = readFlagFile(keyFlag, keyFile);
  const cert = readFlagFile(certFlag, certFile);
  try {
    tls.createSecureContext({ key, cert });
  } catch (err) {
    throw new UsageError(`--${keyFlag} '${keyFile}' and --${certFlag} '${certFile}' are not a PEM key and its certificate: ${(err as Error).message}`);
  }
  return { key, cert };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * A PEM bundle of one or more certificates (JupyterHub's trust bundles hold several). Checked here, since Node takes a
 * file without any certificate silently and then trusts nothing.
 */
function caFlag(name: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  const pem = readFlagFile(name, file);
  const certificates = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) throw new UsageError(`--${name}: '${file}' holds no PEM certificate`);
  for (const certificate of certificates) {
    try {
      new X509Certificate(certificate);
    } catch (err) {
      throw new UsageError(`--${name}: '${file}' holds a certificate that cannot be read: ${(err as Error).message}`);
    }
  }
  return pem;
}

/**
 * `name:value`, each trimmed, as CHP reads them. Errors name the flag and the header but never echo the value: custom
 * headers often carry a shared secret for the targets.
 */
function customHeaderFlags(values: string[] | undefined): [string, string][] | undefined {
  return values?.map((text, index) => {
    const colon = text.indexOf(':');
    const name = text.slice(0, Math.max(colon, 0)).trim();
    if (name === '') throw new UsageError(`--custom-header must be 'name:value' (number ${index + 1} of them has no name before a ':')`);
    const value = text.slice(colon + 1).trim();
    const problem = customHeaderProblem(name, value);
    if (problem) throw new UsageError(`--custom-header: ${problem}`);
    return [name, value];
  });
}

function readFlagFile(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`--${name}: cannot read '${file}': ${(err as Error).message}`);
  }
}

/** Turns CHP-style flags into `startProxy` options; throws UsageError naming the flag at fault. */
function optionsFromFlags(flags: CliFlags, env: NodeJS.ProcessEnv): StartProxyOptions & { logLevel: string; workers: number } {
  const port = flags.port === undefined ? 8000 : portFlag('port', flags.port);
  let apiPort: number;
  if (flags['api-port'] !== undefined) apiPort = portFlag('api-port', flags['api-port']);
  else if (port === 65535) throw new UsageError('--api-port is needed when --port is 65535 (its default is --port + 1)');
  else apiPort = port === 0 ? 0 : port + 1;
  const logLevel = (flags['log-level'] ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${flags['log-level']}'`);
  }
  return {
    ip: addressFlag('ip', flags.ip ?? ''),
    port,
    apiIp: addressFlag('api-ip', flags['api-ip'] ?? '127.0.0.1'),
    apiPort,
    defaultTarget: urlFlag('default-target', flags['default-target']),
    errorTarget: urlFlag('error-target', flags['error-target']),
    tls: servingTlsFlags('ssl', flags),
    apiTls: servingTlsFlags('api-ssl', flags),
    targetTls: targetTlsFlags(flags),
    customHeaders: customHeaderFlags(flags['custom-header']),
    timeoutMs: msFlag('timeout', flags.timeout),
    proxyTimeoutMs: msFlag('proxy-timeout', flags['proxy-timeout']),
    keepAliveTimeoutMs: msFlag('keep-alive-timeout', flags['keep-alive-timeout']),
    xfwd: !flags['no-x-forward'],
    prependPath: !flags['no-prepend-path'],
    includePrefix: !flags['no-include-prefix'],
    authToken: env.CONFIGPROXY_AUTH_TOKEN || undefined,
    processMetrics: true,
    logLevel,
    workers: workersFlag(flags.workers),
  };
}

export interface CliStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Runs the proxy until SIGTERM or SIGINT, then closes it gracefully. Resolves with the exit status: 0 after a
 * clean stop or `--help`, 1 when it cannot start (e.g. port in use), 2 for bad flags.
 */
export async function runProxyCli(
  argv: string[],
  env: NodeJS.ProcessEnv,
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let options: ReturnType<typeof optionsFromFlags>;
  try {
    const flags = parseFlags(argv);
    if (flags.help) {
      streams.stdout.write(USAGE);
      return 0;
    }
    options = optionsFromFlags(flags, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    streams.stderr.write(`labhub-proxy: ${err.message}\nRun with --help for the options.\n`);
    return 2;
  }

  const { logLevel, workers, ...startOptions } = options;
  const log = createLogger('labhub-proxy', { level: logLevel, destination: streams.stderr });
  let running: Pick<RunningProxy, 'publicUrl' | 'apiUrl' | 'close'>;
  try {
    running = workers > 1 ? await startProxyCluster(startOptions, workers, logLevel, log) : await startProxy({ ...startOptions, log });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'proxy could not start');
    return 1;
  }
  log.info(
    { proxy: running.publicUrl, api: running.apiUrl, defaultTarget: startOptions.defaultTarget ?? null },
    `proxy listening on ${running.publicUrl}${workers > 1 ? ` (${workers} workers)` : ''}, API on ${running.apiUrl}/api/routes`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(received);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  log.info({ signal }, 'proxy stopping');
  await running.close();
  return 0;
}

function startProxyCluster(options: StartProxyOptions, workers: number, logLevel: string, log: Logger) {
  const { ip = '', port = 8000, apiIp = '127.0.0.1', apiPort, authToken, apiTls, tls, targetTls, processMetrics = false, log: _log, ...serverOptions } = options;
  return startCluster(
    {
      workers,
      settings: {
        ...serverOptions,
        ip,
        port,
        tls: tls && { ...tls, key: tls.key.toString(), cert: tls.cert.toString(), ca: pemText(tls.ca) },
        targetTls: targetTls && { ...targetTls, key: pemText(targetTls.key), cert: pemText(targetTls.cert), ca: pemText(targetTls.ca) },
        logLevel,
        processMetrics,
      },
      apiIp,
      apiPort: apiPort ?? (port === 0 ? 0 : port + 1),
      authToken,
      apiTls,
      log,
    },
    listen,
    serverUrl,
  );
}

/** Workers get their settings as JSON, where a Buffer would not survive. */
function pemText(pem: Pem | undefined): string | undefined {
  return pem?.toString();
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isProxyWorker()) {
  runProxyWorker();
} else if (isEntryPoint()) {
  runProxyCli(process.argv.slice(2), process.env).then(
    (status) => process.exit(status),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
