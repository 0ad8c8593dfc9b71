import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, dataPath, loadConfig } from '../../hub/config/load.js';

/**
 * hub/config/load.ts: defaults < YAML file < LABHUB_* variables < flag overrides, and errors that name the key
 * and say what was expected (issue 2: "a bad value stops start-up with a message naming the key and what was
 * expected").
 */
const dir = mkdtempSync(join(tmpdir(), 'labhub-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes a YAML file and returns its path. */
function yamlFile(text: string): string {
  const path = join(dir, `config-${++files}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError `load` throws; fails the test if it returns or throws anything else. */
function configError(load: () => unknown): ConfigError {
  let caught: unknown;
  try {
    load();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a ConfigError').toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

describe('defaults', () => {
  it('with no file and no LABHUB_* variables, every key has its documented default', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      port: 8000,
      ip: '',
      data_dir: './data',
      db_url: 'sqlite:labhub.sqlite',
      log_level: 'info',
      hub: { ip: '127.0.0.1', port: 8081 },
      proxy: { mode: 'managed', api_url: 'http://127.0.0.1:8001', check_interval: 5 },
      authenticator: { kind: 'native', admin_users: [], allowed_users: [], blocked_users: [], minimum_password_length: 8 },
      spawner: {
        kind: 'local', cmd: ['jupyterhub-singleuser'], args: [], ip: '127.0.0.1', environment: {},
        start_timeout: 60, http_timeout: 30, poll_interval: 30, run_as_system_users: true, allow_root: false,
      },
      concurrent_spawn_limit: 100,
      active_server_limit: 0,
      allow_named_servers: false,
      named_server_limit_per_user: 0,
      cookie_max_age_days: 14,
      token_expires_in_max_seconds: 0,
      oauth_token_expires_in: 14 * 86_400,
      services: [],
      roles: [],
      authenticate_prometheus: true,
    });
    expect(config.public_url).toBeUndefined();
    expect(config.proxy.auth_token).toBeUndefined();
    expect(config.proxy.command).toBeUndefined();
    expect(config.hub.connect_url).toBeUndefined();
    expect(config.spawner.env_keep).toBeUndefined();
  });

  it('an empty file is the defaults', () => {
    expect(loadConfig({ env: {}, file: yamlFile('') })).toEqual(loadConfig({ env: {} }));
    expect(loadConfig({ env: {}, file: yamlFile('# only a comment\n') })).toEqual(loadConfig({ env: {} }));
  });

  it('two loads do not share mutable defaults', () => {
    const a = loadConfig({ env: {} });
    a.spawner.cmd.push('--changed');
    a.roles.push({ name: 'x', description: '', scopes: [], users: [], groups: [], services: [] });
    const b = loadConfig({ env: {} });
    expect(b.spawner.cmd).toEqual(['jupyterhub-singleuser']);
    expect(b.roles).toEqual([]);
  });

  it('dataPath resolves relative paths against data_dir and keeps absolute ones', () => {
    const config = loadConfig({ env: {}, overrides: { data_dir: '/srv/labhub' } });
    expect(dataPath(config, 'labhub.sqlite')).toBe('/srv/labhub/labhub.sqlite');
    expect(dataPath(config, '/elsewhere/db.sqlite')).toBe('/elsewhere/db.sqlite');
  });
});

describe('YAML file', () => {
  it('sets top-level and nested keys; nested blocks keep the defaults of keys they do not name', () => {
    const file = yamlFile(`
port: 9000
ip: 127.0.0.1
data_dir: /var/lib/labhub
db_url: postgres://labhub:secret@db.internal:5432/labhub
public_url: https://hub.example.org
log_level: debug
allow_named_servers: true
spawner:
  cmd: [/opt/jupyter/bin/jupyterhub-singleuser]
  args: ["--ServerApp.default_url=/lab"]
  start_timeout: 120
  environment:
    MY_VAR: hello
services:
  - name: culler
    api_token: 0123456789abcdef0123456789abcdef
roles:
  - name: culler
    scopes: [list:users, read:users:activity, read:servers, delete:servers]
    services: [culler]
`);
    const config = loadConfig({ env: {}, file });
    expect(config).toMatchObject({
      port: 9000, ip: '127.0.0.1', data_dir: '/var/lib/labhub', db_url: 'postgres://labhub:secret@db.internal:5432/labhub',
      public_url: 'https://hub.example.org', log_level: 'debug', allow_named_servers: true,
    });
    expect(config.spawner).toMatchObject({
      cmd: ['/opt/jupyter/bin/jupyterhub-singleuser'], args: ['--ServerApp.default_url=/lab'], start_timeout: 120,
      environment: { MY_VAR: 'hello' },
      // not in the file: defaults
      http_timeout: 30, kind: 'local', ip: '127.0.0.1',
    });
    expect(config.services).toEqual([
      { name: 'culler', api_token: '0123456789abcdef0123456789abcdef', admin: false, display: true, info: {}, oauth_client_allowed_scopes: [], oauth_no_confirm: false },
    ]);
    expect(config.roles).toEqual([{
      name: 'culler', description: '', scopes: ['list:users', 'read:users:activity', 'read:servers', 'delete:servers'],
      users: [], groups: [], services: ['culler'],
    }]);
  });

  it('is found through LABHUB_CONFIG when no file is given, and an explicit file wins over it', () => {
    const viaEnv = yamlFile('port: 9100\n');
    const explicit = yamlFile('port: 9200\n');
    expect(loadConfig({ env: { LABHUB_CONFIG: viaEnv } }).port).toBe(9100);
    expect(loadConfig({ env: { LABHUB_CONFIG: viaEnv }, file: explicit }).port).toBe(9200);
  });

  it('the example config in docs/ loads', () => {
    const example = join(import.meta.dirname, '../../docs/example-config.yaml');
    expect(() => loadConfig({ env: {}, file: example })).not.toThrow();
  });
});

describe('LABHUB_* environment variables', () => {
  it('set top-level keys, with the value read as YAML (numbers, booleans)', () => {
    const config = loadConfig({
      env: { LABHUB_PORT: '9000', LABHUB_ALLOW_NAMED_SERVERS: 'true', LABHUB_IP: '0.0.0.0', LABHUB_LOG_LEVEL: 'warn' },
    });
    expect(config).toMatchObject({ port: 9000, allow_named_servers: true, ip: '0.0.0.0', log_level: 'warn' });
  });

  it('set nested keys with __ between levels', () => {
    const config = loadConfig({ env: { LABHUB_SPAWNER__START_TIMEOUT: '90', LABHUB_HUB__PORT: '8082', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
    expect(config.spawner.start_timeout).toBe(90);
    expect(config.spawner.http_timeout).toBe(30);
    expect(config.hub.port).toBe(8082);
    expect(config.hub.ip).toBe('127.0.0.1');
    expect(config.authenticator.kind).toBe('dummy');
  });

  it('set lists, as JSON or YAML flow sequences', () => {
    expect(loadConfig({ env: { LABHUB_SPAWNER__CMD: '["a","b"]' } }).spawner.cmd).toEqual(['a', 'b']);
    expect(loadConfig({ env: { LABHUB_SPAWNER__CMD: '[/opt/jupyter/bin/jupyterhub-singleuser, --debug]' } }).spawner.cmd)
      .toEqual(['/opt/jupyter/bin/jupyterhub-singleuser', '--debug']);
    expect(loadConfig({ env: { LABHUB_AUTHENTICATOR__ADMIN_USERS: '[alice, bob]' } }).authenticator.admin_users).toEqual(['alice', 'bob']);
  });

  it('set mappings, keeping the case of their keys', () => {
    expect(loadConfig({ env: { LABHUB_SPAWNER__ENVIRONMENT: '{MY_VAR: hello, TZ: UTC}' } }).spawner.environment)
      .toEqual({ MY_VAR: 'hello', TZ: 'UTC' });
  });

  it('declare services and roles (the form the idle culler needs)', () => {
    const token = 'a'.repeat(32);
    const config = loadConfig({
      env: {
        LABHUB_SERVICES: `[{name: culler, api_token: ${token}}]`,
        LABHUB_ROLES: '[{name: culler, scopes: [list:users, read:users:activity, read:servers, delete:servers, admin:users], services: [culler]}]',
      },
    });
    expect(config.services).toMatchObject([{ name: 'culler', api_token: token, admin: false }]);
    expect(config.roles).toMatchObject([{
      name: 'culler', scopes: ['list:users', 'read:users:activity', 'read:servers', 'delete:servers', 'admin:users'], services: ['culler'],
    }]);
  });

  it('CONFIGPROXY_AUTH_TOKEN sets proxy.auth_token as a plain string and wins over LABHUB_PROXY__AUTH_TOKEN', () => {
    expect(loadConfig({ env: { CONFIGPROXY_AUTH_TOKEN: 'chp-token-0123456789' } }).proxy.auth_token).toBe('chp-token-0123456789');
    // A value YAML would read as a number stays the string it is.
    expect(loadConfig({ env: { CONFIGPROXY_AUTH_TOKEN: '12345678901234567890' } }).proxy.auth_token).toBe('12345678901234567890');
    expect(loadConfig({ env: { LABHUB_PROXY__AUTH_TOKEN: 'labhub-token-0123456789' } }).proxy.auth_token).toBe('labhub-token-0123456789');
    expect(loadConfig({
      env: { CONFIGPROXY_AUTH_TOKEN: 'chp-token-0123456789', LABHUB_PROXY__AUTH_TOKEN: 'labhub-token-0123456789' },
    }).proxy.auth_token).toBe('chp-token-0123456789');
  });

  it('proxy.api_urls lists several proxy instances, only in external mode', () => {
    const urls = ['http://10.0.0.1:8001', 'http://10.0.0.2:8001'];
    expect(loadConfig({ env: { LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URLS: JSON.stringify(urls) } }).proxy.api_urls).toEqual(urls);
    expect(() => loadConfig({ env: { LABHUB_PROXY__API_URLS: JSON.stringify(urls) } })).toThrow(/api_urls/);
    expect(() => loadConfig({ env: { LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URLS: '[]' } })).toThrow(/api_urls/);
  });

  it('a quoted value stays a string; null-like words are not null', () => {
    expect(loadConfig({ env: { LABHUB_AUTHENTICATOR__PASSWORD: '"123456"' } }).authenticator.password).toBe('123456');
    expect(loadConfig({ env: { LABHUB_AUTHENTICATOR__PASSWORD: 'null' } }).authenticator.password).toBe('null');
    expect(loadConfig({ env: { LABHUB_AUTHENTICATOR__PASSWORD: '~' } }).authenticator.password).toBe('~');
  });

  it('variables that do not name a top-level key (LABHUB_CONFIG, test-suite settings) and other prefixes are not config', () => {
    const config = loadConfig({
      env: { LABHUB_CONFIG: '', LABHUB_JH5_VENV: '/opt/x', LABHUB_COOKIE_SECRET: 'x', PORT: '1234', JUPYTERHUB_PORT: '1', labhub_port: '5' },
    });
    expect(config.port).toBe(8000);
  });

  it('below a known key, an unknown name is an error naming it', () => {
    const err = configError(() => loadConfig({ env: { LABHUB_SPAWNER__START_TIMOUT: '90' } }));
    expect(err.message).toContain('spawner.start_timout: unknown key');
  });

  it('a value that is not valid YAML stays text, and an error about it names the variable', () => {
    const err = configError(() => loadConfig({ env: { LABHUB_SPAWNER__CMD: '[a, b' } }));
    expect(err.message).toMatch(/spawner\.cmd: .*\(from LABHUB_SPAWNER__CMD\)/);
    expect(loadConfig({ env: { LABHUB_AUTHENTICATOR__PASSWORD: '[not-yaml' } }).authenticator.password).toBe('[not-yaml');
  });

  it('a secret from a Secret that YAML would read as a number, boolean or mapping is taken as written where text is wanted', () => {
    const env = {
      LABHUB_AUTHENTICATOR__KIND: 'oidc',
      LABHUB_AUTH__OIDC__ISSUER: 'https://id.example.org', LABHUB_AUTH__OIDC__CLIENT_ID: 'labhub',
      LABHUB_AUTH__OIDC__CLIENT_SECRET: '0123456789',
      LABHUB_AUTHENTICATOR__PASSWORD: 'user: pass',
      LABHUB_CREDENTIALS__MQTT__ADMIN_URL: 'mqtt://admin:p4ss@mqtt.example.org:1883',
    };
    const config = loadConfig({ env });
    expect(config.auth.oidc?.client_secret).toBe('0123456789');
    expect(config.authenticator.password).toBe('user: pass');
    expect(config.credentials.mqtt?.admin_url).toBe('mqtt://admin:p4ss@mqtt.example.org:1883');
    // Where a number is wanted, a number is still read.
    expect(loadConfig({ env: { LABHUB_SPAWNER__START_TIMEOUT: '90' } }).spawner.start_timeout).toBe(90);
  });
});

describe('precedence: defaults < file < environment < overrides', () => {
  const file = () => yamlFile(`
port: 9000
log_level: debug
spawner:
  cmd: [from-file]
  start_timeout: 10
  http_timeout: 11
`);

  it('the environment wins over the file, key by key inside mappings', () => {
    const config = loadConfig({ file: file(), env: { LABHUB_PORT: '9001', LABHUB_SPAWNER__START_TIMEOUT: '90' } });
    expect(config.port).toBe(9001);
    expect(config.log_level).toBe('debug');
    expect(config.spawner).toMatchObject({ cmd: ['from-file'], start_timeout: 90, http_timeout: 11, poll_interval: 30 });
  });

  it('overrides (flags) win over the environment and the file', () => {
    const config = loadConfig({
      file: file(),
      env: { LABHUB_PORT: '9001', LABHUB_DATA_DIR: '/from/env', LABHUB_LOG_LEVEL: 'warn' },
      overrides: { port: 9002, data_dir: '/from/flag' },
    });
    expect(config).toMatchObject({ port: 9002, data_dir: '/from/flag', log_level: 'warn' });
    expect(config.spawner.start_timeout).toBe(10);
  });

  it('lists are replaced whole, never merged', () => {
    const config = loadConfig({ file: file(), env: { LABHUB_SPAWNER__CMD: '[from-env]' } });
    expect(config.spawner.cmd).toEqual(['from-env']);
  });

  it('overrides are validated like everything else', () => {
    const err = configError(() => loadConfig({ env: {}, overrides: { port: 70000 } }));
    expect(err.message).toMatch(/port: .*65535/);
  });
});

describe('errors name the key and what was expected', () => {
  it('two services with one api_token (a token must name one service)', () => {
    const file = yamlFile('services:\n  - {name: a, api_token: same-token-123}\n  - {name: b, api_token: same-token-123}\n');
    expect(configError(() => loadConfig({ env: {}, file })).message).toMatch(/services: two services share an api_token/);
  });

  it('LABHUB_PORT=abc', () => {
    const err = configError(() => loadConfig({ env: { LABHUB_PORT: 'abc' } }));
    expect(err.message).toMatch(/\bport: .*expected number/);
  });

  it('port 70000, 0 and 1.5', () => {
    expect(configError(() => loadConfig({ env: { LABHUB_PORT: '70000' } })).message).toMatch(/\bport: .*<=\s*65535/);
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('port: 70000\n') })).message).toMatch(/\bport: .*65535/);
    expect(configError(() => loadConfig({ env: { LABHUB_PORT: '0' } })).message).toMatch(/\bport: .*>=\s*1/);
    expect(configError(() => loadConfig({ env: { LABHUB_PORT: '1.5' } })).message).toMatch(/\bport: .*int/);
    expect(configError(() => loadConfig({ env: { LABHUB_HUB__PORT: '70000' } })).message).toMatch(/\bhub\.port: .*65535/);
  });

  it('a port that browsers and fetch refuse, for the public port and the URLs the hub or a browser fetches', () => {
    expect(configError(() => loadConfig({ env: { LABHUB_PORT: '10080' } })).message).toMatch(/\bport: port 10080 is one that browsers and Node's fetch refuse/);
    expect(configError(() => loadConfig({ env: { LABHUB_PROXY__API_URL: 'http://127.0.0.1:6000' } })).message).toMatch(/proxy\.api_url: port 6000 /);
    expect(configError(() => loadConfig({ env: { LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URLS: '["http://a:8001", "http://b:10080"]' } })).message)
      .toMatch(/proxy\.api_urls\.1: port 10080 /);
    expect(configError(() => loadConfig({ env: { LABHUB_PUBLIC_URL: 'https://hub.example.org:6666' } })).message).toMatch(/public_url: port 6666 /);
    // The hub's own port is reached by the proxy and by notebook servers, neither of which uses fetch.
    expect(loadConfig({ env: { LABHUB_HUB__PORT: '10080', LABHUB_PORT: '10081' } }).hub.port).toBe(10080);
  });

  it('an unknown top-level key in the file (typo spawnr:)', () => {
    const file = yamlFile('spawnr:\n  cmd: [x]\n');
    const err = configError(() => loadConfig({ env: {}, file }));
    expect(err.message).toContain('spawnr: unknown key');
    expect(err.message).toContain(file);
  });

  it('an unknown nested key', () => {
    const err = configError(() => loadConfig({ env: {}, file: yamlFile('spawner:\n  start_timout: 5\n') }));
    expect(err.message).toContain('spawner.start_timout: unknown key');
    const inList = configError(() => loadConfig({ env: {}, file: yamlFile('services:\n  - name: x\n    token: abcdefghij\n') }));
    expect(inList.message).toContain('services.0.token: unknown key');
  });

  it('a wrong type', () => {
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('spawner:\n  start_timeout: soon\n') })).message)
      .toMatch(/spawner\.start_timeout: .*expected number/);
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('spawner:\n  cmd: jupyterhub-singleuser\n') })).message)
      .toMatch(/spawner\.cmd: .*expected array/);
    expect(configError(() => loadConfig({ env: { LABHUB_ALLOW_NAMED_SERVERS: 'yes' } })).message)
      .toMatch(/allow_named_servers: .*expected boolean/);
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('hub: [1, 2]\n') })).message)
      .toMatch(/\bhub: .*expected object/);
  });

  it('a value out of bounds', () => {
    expect(configError(() => loadConfig({ env: { LABHUB_SPAWNER__START_TIMEOUT: '0' } })).message).toMatch(/spawner\.start_timeout: /);
    expect(configError(() => loadConfig({ env: { LABHUB_SPAWNER__CMD: '[]' } })).message).toMatch(/spawner\.cmd: /);
    expect(configError(() => loadConfig({ env: { LABHUB_PROXY__AUTH_TOKEN: 'short' } })).message).toMatch(/proxy\.auth_token: /);
    expect(configError(() => loadConfig({ env: { LABHUB_SERVICES: '[{name: s, api_token: short}]' } })).message)
      .toMatch(/services\.0\.api_token: .*8 characters/);
  });

  it('a bad enum value (log_level: loud)', () => {
    const err = configError(() => loadConfig({ env: {}, file: yamlFile('log_level: loud\n') }));
    expect(err.message).toMatch(/log_level: .*expected one of/);
    expect(err.message).toContain('"debug"');
    expect(configError(() => loadConfig({ env: { LABHUB_SPAWNER__KIND: 'swarm' } })).message).toMatch(/spawner\.kind: .*"local"/);
  });

  it('a db_url with a scheme other than sqlite: or postgres://', () => {
    const err = configError(() => loadConfig({ env: { LABHUB_DB_URL: 'mysql://u@h/db' } }));
    expect(err.message).toMatch(/db_url: expected sqlite:<path> or postgres:\/\//);
    expect(loadConfig({ env: { LABHUB_DB_URL: 'postgresql://u@h/db' } }).db_url).toBe('postgresql://u@h/db');
    expect(loadConfig({ env: { LABHUB_DB_URL: 'sqlite:/tmp/x.sqlite' } }).db_url).toBe('sqlite:/tmp/x.sqlite');
  });

  it('a URL key that is not an absolute URL', () => {
    expect(configError(() => loadConfig({ env: { LABHUB_PUBLIC_URL: 'hub.example.org' } })).message).toMatch(/public_url: expected an absolute URL/);
  });

  it('several problems are all listed', () => {
    const err = configError(() => loadConfig({ env: {}, file: yamlFile('port: 70000\nspawner:\n  start_timout: 5\nlog_level: loud\n') }));
    expect(err.message).toMatch(/\bport: /);
    expect(err.message).toContain('spawner.start_timout: unknown key');
    expect(err.message).toMatch(/log_level: /);
  });

  it('invalid YAML', () => {
    const file = yamlFile('port: [9000\nip: x\n');
    const err = configError(() => loadConfig({ env: {}, file }));
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/not valid YAML/);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('a file that cannot be read: missing, or a directory', () => {
    const missing = join(dir, 'no-such-file.yaml');
    const err = configError(() => loadConfig({ env: {}, file: missing }));
    expect(err.message).toContain(missing);
    expect(err.message).toMatch(/cannot read.*ENOENT/);
    const asDir = join(dir, 'a-directory.yaml');
    mkdirSync(asDir);
    expect(configError(() => loadConfig({ env: {}, file: asDir })).message).toMatch(/cannot read.*EISDIR/);
    expect(configError(() => loadConfig({ env: { LABHUB_CONFIG: missing } })).message).toContain(missing);
  });

  it('a file whose top level is a list, or a scalar', () => {
    const list = yamlFile('- port: 9000\n- ip: 127.0.0.1\n');
    const err = configError(() => loadConfig({ env: {}, file: list }));
    expect(err.message).toContain(list);
    expect(err.message).toMatch(/expected a mapping/);
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('just a string\n') })).message).toMatch(/expected a mapping/);
  });

  it('a role with an unknown scope or a bad member name names the role', () => {
    const err = configError(() => loadConfig({ env: { LABHUB_ROLES: '[{name: culler, scopes: [no:such-scope]}]' } }));
    expect(err.message).toMatch(/roles\.0 \(culler\): .*no:such-scope/);
    const member = configError(() => loadConfig({ env: { LABHUB_ROLES: '[{name: r, users: ["a/b"]}]' } }));
    expect(member.message).toMatch(/roles\.0 \(r\): .*a\/b/);
  });
});

describe('__proto__ and other prototype keys', () => {
  const clean = () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  };

  it('a top-level __proto__ key in the file is ignored', () => {
    const config = loadConfig({ env: {}, file: yamlFile('__proto__:\n  polluted: true\n  port: 1\nport: 9000\n') });
    expect(config.port).toBe(9000);
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect(Object.keys(config)).not.toContain('__proto__');
    expect((config as Record<string, unknown>).polluted).toBeUndefined();
    clean();
  });

  it('a nested __proto__ key in the file is ignored too', () => {
    const file = yamlFile('spawner:\n  __proto__:\n    polluted: true\n  start_timeout: 5\n');
    const config = loadConfig({ env: {}, file });
    expect(config.spawner.start_timeout).toBe(5);
    expect(Object.keys(config.spawner)).not.toContain('__proto__');
    expect((config.spawner as Record<string, unknown>).polluted).toBeUndefined();
    clean();
  });

  it('constructor/prototype keys pollute nothing, from the file or the environment', () => {
    try {
      loadConfig({ env: {}, file: yamlFile('constructor:\n  prototype:\n    polluted: true\n') });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
    }
    try {
      loadConfig({ env: { LABHUB_SPAWNER__CONSTRUCTOR__PROTOTYPE__POLLUTED: 'true', LABHUB___PROTO____POLLUTED: 'true' } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
    }
    clean();
  });
});
