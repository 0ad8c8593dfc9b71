import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LdapAuthenticator } from '../../authenticators/ldap.js';
import { authSchema } from '../../hub/config/auth-schema.js';
import { createLogger } from '../../hub/log.js';
import { requireService } from '../helpers/jupyter.js';
import { BASE_DN, Slapd, slapdAvailable } from '../helpers/slapd.js';

const log = createLogger('test', { level: 'silent' });
const attempt = { username: 'erin', password: 'Erin-pw-55', ip: '127.0.0.1' };

function authenticator(ldap: Record<string, unknown>): LdapAuthenticator {
  const config = authSchema.parse({ ldap: { bind_dn_templates: [`uid={username},ou=people,${BASE_DN}`], timeout: 5, ...ldap } }).ldap!;
  return new LdapAuthenticator(config, log);
}

describe.skipIf(!requireService('slapd (apt-get install slapd ldap-utils)', slapdAvailable))('LDAP over TLS: LDAPS and StartTLS with a CA file', () => {
  const slapd = new Slapd({ people: [{ uid: 'erin', password: 'Erin-pw-55' }], groups: {} }, { tls: true });

  beforeAll(async () => {
    await slapd.start();
  });
  afterAll(async () => {
    await slapd.stop();
  });

  it('logs in over LDAPS when the CA is given, and not when it is unknown', async () => {
    expect(await authenticator({ url: slapd.ldapsUrl, ca_file: slapd.caFile }).authenticate(attempt)).toMatchObject({ name: 'erin' });
    expect(await authenticator({ url: slapd.ldapsUrl }).authenticate(attempt)).toBeNull();
  });

  it('logs in over StartTLS when the CA is given, and not when it is unknown', async () => {
    expect(await authenticator({ url: slapd.url, start_tls: true, ca_file: slapd.caFile }).authenticate(attempt)).toMatchObject({ name: 'erin' });
    expect(await authenticator({ url: slapd.url, start_tls: true }).authenticate(attempt)).toBeNull();
  });

  it('still checks the password over TLS', async () => {
    expect(await authenticator({ url: slapd.ldapsUrl, ca_file: slapd.caFile }).authenticate({ ...attempt, password: 'wrong' })).toBeNull();
  });
});
