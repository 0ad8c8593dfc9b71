import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'ldapts';
import { requireService } from '../helpers/jupyter.js';
import { BASE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd, slapdAvailable } from '../helpers/slapd.js';
import { expectRefused, startConfiguredHub, tryLogin, userModel } from '../helpers/auth-hub.js';
import type { HubProcess } from '../helpers/hub.js';

const fixture = {
  people: [
    { uid: 'alice', password: 'Alice-pw-1' },
    { uid: 'bob', password: 'Bob-pw-22' },
    { uid: 'carol', password: 'Carol-pw-333' },
    { uid: 'dave', password: 'Dave-pw-4444', mail: 'dave.d@example.org' },
  ],
  groups: { researchers: ['bob', 'dave'], hubadmins: ['alice'], outsiders: ['carol'] },
};

describe.skipIf(!requireService('slapd (apt-get install slapd ldap-utils)', slapdAvailable))('LDAP authenticator against a real slapd', () => {
  // The server emulates Active Directory's "DN + empty password = anonymous success" so the hub's guard is what is tested.
  const slapd = new Slapd(fixture, { allowAnonymousDnBind: true });

  beforeAll(async () => {
    await slapd.start();
  });
  afterAll(async () => {
    await slapd.stop();
  });

  it('the test server really takes a DN with an empty password as a successful (anonymous) bind', async () => {
    const client = new Client({ url: slapd.url });
    await expect(client.bind(slapd.userDn('alice'), '')).resolves.toBeUndefined();
    await client.unbind();
  });

  describe('search-then-bind with a service account, groups by search', () => {
    let hub: HubProcess;
    let admin = '';

    beforeAll(async () => {
      ({ hub, adminToken: admin } = await startConfiguredHub({
        authenticator: { kind: 'ldap' },
        auth: {
          ldap: {
            url: slapd.url,
            search: { base_dn: `ou=people,${BASE_DN}`, bind_dn: SERVICE_DN, bind_password: SERVICE_PASSWORD, filter: '(objectClass=inetOrgPerson)' },
            group_search: { base_dn: `ou=groups,${BASE_DN}` },
          },
          allowed_groups: ['researchers'],
          admin_groups: ['hubadmins'],
          blocked_groups: ['outsiders'],
          manage_groups: true,
        },
      }));
    });
    afterAll(async () => {
      await hub.cleanup();
    });

    it('logs in a member of an allowed group, with the groups synced into hub groups', async () => {
      const { res, browser } = await tryLogin(hub, 'bob', 'Bob-pw-22');
      expect(res.status).toBe(200);
      expect(browser.visited.at(-1)).toBe('/hub/home');
      const bob = await userModel(hub, admin, 'bob');
      expect(bob.admin).toBe(false);
      expect(bob.groups).toEqual(['researchers']);
    });

    it('makes a member of an admin group an admin (admin groups also allow)', async () => {
      const { res } = await tryLogin(hub, 'Alice', 'Alice-pw-1');
      expect(res.status).toBe(200);
      const alice = await userModel(hub, admin, 'alice');
      expect(alice.admin).toBe(true);
      expect(alice.groups).toEqual(['hubadmins']);
    });

    it('refuses a wrong password, an unknown user and a user outside the allowed groups with one message', async () => {
      expectRefused(await tryLogin(hub, 'bob', 'Bob-pw-23'));
      expectRefused(await tryLogin(hub, 'nobody', 'Bob-pw-22'));
      expectRefused(await tryLogin(hub, 'carol', 'Carol-pw-333'));
    });

    it('refuses empty, whitespace-only and NUL-containing passwords before LDAP is asked', async () => {
      const from = hub.output.length;
      for (const password of ['', ' ', '\t \n', 'Alice-pw-1\0junk']) expectRefused(await tryLogin(hub, 'alice', password));
      expect(hub.output.slice(from)).not.toMatch(/LDAP error/);
    });

    it('refuses filter injection attempts, even with a real password', async () => {
      for (const username of ['*', 'al*', 'alice)(uid=*', '*)(|(uid=*', 'alice)(|(objectClass=*', 'bob\\2a', 'b*b']) {
        expectRefused(await tryLogin(hub, username, 'Alice-pw-1'));
        expectRefused(await tryLogin(hub, username, 'Bob-pw-22'));
      }
    });
  });

  describe('direct bind by DN template, groups searched as the user, login mapped to another attribute', () => {
    let hub: HubProcess;
    let admin = '';

    beforeAll(async () => {
      ({ hub, adminToken: admin } = await startConfiguredHub({
        // bob is blocked and also listed as an admin: the deny rule must win (GHSA-gprj-3p75-f996).
        authenticator: { kind: 'ldap', blocked_users: ['bob'], admin_users: ['bob'] },
        auth: {
          ldap: {
            url: slapd.url,
            bind_dn_templates: [`uid={username},ou=nowhere,${BASE_DN}`, `uid={username},ou=people,${BASE_DN}`],
            username_attribute: 'mail',
            group_search: { base_dn: `ou=groups,${BASE_DN}`, filter: '(member={dn})' },
          },
          allowed_groups: ['researchers'],
        },
      }));
    });
    afterAll(async () => {
      await hub.cleanup();
    });

    it('binds with the second template and names the hub user from the mapped attribute', async () => {
      const { res } = await tryLogin(hub, 'dave', 'Dave-pw-4444');
      expect(res.status).toBe(200);
      const dave = await userModel(hub, admin, 'dave.d@example.org');
      expect(dave.admin).toBe(false);
    });

    it('refuses a blocked user whatever the groups and admin_users say, and DN injection', async () => {
      expectRefused(await tryLogin(hub, 'bob', 'Bob-pw-22'));
      for (const username of ['dave,ou=people', 'dave+cn=x', '*', 'dave\\', '#dave', ' dave']) {
        expectRefused(await tryLogin(hub, username, 'Dave-pw-4444'));
      }
    });

    it('treats an empty password as a failure, though this server would bind it anonymously', async () => {
      const from = hub.output.length;
      expectRefused(await tryLogin(hub, 'dave', ''));
      expect(hub.output.slice(from)).toContain('failed login');
      expect(hub.output.slice(from)).not.toContain('"msg":"login"');
    });
  });
});
