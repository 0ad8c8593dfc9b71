import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pamAuthenticatePromise } from 'node-linux-pam';
import { PamAuthenticator } from '../../authenticators/pam.js';
import { createLogger } from '../../hub/log.js';
import { requireService } from '../helpers/jupyter.js';
import { expectRefused, startConfiguredHub, tryLogin, userModel } from '../helpers/auth-hub.js';
import type { HubProcess } from '../helpers/hub.js';

const SERVICE = 'labhub-test';
const NULLOK_SERVICE = 'labhub-test-nullok';
const USERS_GROUP = 'lhpam-users';
const ADMINS_GROUP = 'lhpam-admins';
const PASSWORD = 'S3cret-pw!';
const users = {
  good: 'lhpam-good',
  admin: 'lhpam-admin',
  expired: 'lhpam-expired',
  locked: 'lhpam-locked',
  empty: 'lhpam-empty',
  outsider: 'lhpam-outsider',
};

const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
const root = process.getuid?.() === 0;
const addonBuilt = existsSync('node_modules/node-linux-pam/build/Release/node-linux-pam.node');

function removeAccounts() {
  for (const name of Object.values(users)) if (existsSync('/etc/passwd') && execFileSync('getent', ['passwd'], { encoding: 'utf8' }).includes(`${name}:`)) sh('userdel', [name]);
  for (const group of [USERS_GROUP, ADMINS_GROUP]) {
    try {
      sh('groupdel', [group]);
    } catch {
      // not there
    }
  }
}

describe.skipIf(!requireService('PAM as root with the node-linux-pam addon (scripts/setup-auth.sh)', root && addonBuilt))('PAM authenticator with real system users', () => {
  let hub: HubProcess;
  let admin = '';

  beforeAll(async () => {
    removeAccounts();
    // No nullok, and nodelay so a wrong password is not held for pam_unix's ~2 s.
    writeFileSync(`/etc/pam.d/${SERVICE}`, 'auth required pam_unix.so nodelay\naccount required pam_unix.so\n');
    writeFileSync(`/etc/pam.d/${NULLOK_SERVICE}`, 'auth required pam_unix.so nullok nodelay\naccount required pam_unix.so\n');
    sh('groupadd', [USERS_GROUP]);
    sh('groupadd', [ADMINS_GROUP]);
    for (const name of Object.values(users)) {
      sh('useradd', ['-M', '-s', '/usr/sbin/nologin', ...(name === users.outsider ? [] : ['-G', name === users.admin ? ADMINS_GROUP : USERS_GROUP]), name]);
      sh('chpasswd', [], `${name}:${PASSWORD}\n`);
    }
    sh('chage', ['-E', '2000-01-01', users.expired]);
    sh('usermod', ['-L', users.locked]);
    sh('passwd', ['-d', users.empty]);
    ({ hub, adminToken: admin } = await startConfiguredHub({
      authenticator: { kind: 'pam' },
      auth: { pam: { service: SERVICE }, allowed_groups: [USERS_GROUP], admin_groups: [ADMINS_GROUP], manage_groups: true },
    }));
  });

  afterAll(async () => {
    await hub?.cleanup();
    removeAccounts();
    rmSync(`/etc/pam.d/${SERVICE}`, { force: true });
    rmSync(`/etc/pam.d/${NULLOK_SERVICE}`, { force: true });
  });

  it('logs in a user with the right password, with UNIX groups as hub groups', async () => {
    const { res, browser } = await tryLogin(hub, users.good, PASSWORD);
    expect(res.status).toBe(200);
    expect(browser.visited.at(-1)).toBe('/hub/home');
    const model = await userModel(hub, admin, users.good);
    expect(model.admin).toBe(false);
    expect(model.groups).toContain(USERS_GROUP);
  });

  it('makes a member of an admin UNIX group an admin', async () => {
    expect((await tryLogin(hub, users.admin, PASSWORD)).res.status).toBe(200);
    expect((await userModel(hub, admin, users.admin)).admin).toBe(true);
  });

  it('refuses a wrong password, an expired account and a locked account with one message', async () => {
    const from = hub.output.length;
    expectRefused(await tryLogin(hub, users.good, 'wrong-password'));
    expectRefused(await tryLogin(hub, users.expired, PASSWORD));
    expectRefused(await tryLogin(hub, users.locked, PASSWORD));
    // The account phase ran: PAM_ACCT_EXPIRED (13) for the expired account, after a correct password.
    expect(hub.output.slice(from)).toContain('"pamCode":13');
  });

  it('refuses a passwordless account whatever is typed, and a user outside the allowed groups', async () => {
    for (const password of [PASSWORD, 'anything', '', ' ']) expectRefused(await tryLogin(hub, users.empty, password));
    expectRefused(await tryLogin(hub, users.outsider, PASSWORD));
    expectRefused(await tryLogin(hub, 'lhpam-nosuchuser', PASSWORD));
  });

  it('never hands an empty or NUL-cut password to PAM, where a nullok service would accept it', async () => {
    // What the guard prevents: with nullok, PAM itself accepts the empty password of a passwordless account.
    await expect(pamAuthenticatePromise({ username: users.empty, password: '', serviceName: NULLOK_SERVICE })).resolves.toBe(0);
    const pam = new PamAuthenticator(NULLOK_SERVICE, createLogger('test', { level: 'silent' }));
    expect(await pam.authenticate({ username: users.empty, password: '', ip: '127.0.0.1' })).toBeNull();
    expect(await pam.authenticate({ username: users.good, password: `${PASSWORD}\0tail`, ip: '127.0.0.1' })).toBeNull();
    expect(await pam.authenticate({ username: users.good, password: PASSWORD, ip: '127.0.0.1' })).toMatchObject({ name: users.good });
  });
});
