import { describe, expect, it } from 'vitest';
import { authSchema } from '../../hub/config/auth-schema.js';
import { configSchema } from '../../hub/config/schema.js';

const problems = (auth: unknown) => {
  const r = authSchema.safeParse(auth);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('auth config', () => {
  it('has safe defaults: throttling on, auth_state off, PAM service login', () => {
    const auth = configSchema.parse({}).auth;
    expect(auth.rate_limit).toMatchObject({ enabled: true, account_failures: 5, ip_failures: 30, base_delay: 1, max_delay: 300 });
    expect(auth.auth_state.enabled).toBe(false);
    expect(auth.pam.service).toBe('login');
    expect(auth.manage_groups).toBe(false);
  });

  it('refuses an LDAP setup that would never check a password, and StartTLS on ldaps://', () => {
    expect(problems({ ldap: { url: 'ldap://x' } }).join()).toMatch(/bind_dn_templates or search/);
    expect(problems({ ldap: { url: 'ldap://x', bind_dn_templates: ['uid=fixed,dc=x'] } }).join()).toMatch(/\{username\}/);
    expect(problems({ ldap: { url: 'ldaps://x', start_tls: true, bind_dn_templates: ['uid={username}'] } }).join()).toMatch(/start_tls/);
    expect(problems({ ldap: { url: 'http://x', bind_dn_templates: ['uid={username}'] } }).join()).toMatch(/ldap:\/\//);
    expect(problems({ ldap: { url: 'ldap://x', bind_dn_templates: ['uid={username}'] } })).toEqual([]);
  });

  it('refuses unknown keys, bad PAM service names and an OIDC issuer that is not a URL', () => {
    expect(problems({ pam: { service: '../etc/passwd' } }).length).toBe(1);
    expect(problems({ ldap: { url: 'ldap://x', bind_dn_templates: ['uid={username}'], bogus: 1 } }).length).toBe(1);
    expect(problems({ oidc: { issuer: 'not a url', client_id: 'a', client_secret: 'b' } }).length).toBe(1);
    expect(problems({ rate_limit: { account_failures: 0 } }).length).toBe(1);
  });

  it('wants the OIDC redirect URL in the normal form openid-client sends to the token endpoint', () => {
    const oidc = (redirect_url: string) => problems({ oidc: { issuer: 'https://id.example.org', client_id: 'a', client_secret: 'b', redirect_url } });
    expect(oidc('http://10.96.0.7:80/hub/oauth_callback').join()).toMatch(/normal form, http:\/\/10\.96\.0\.7\/hub\/oauth_callback/);
    expect(oidc('https://LAB.example.org/hub/oauth_callback').join()).toMatch(/https:\/\/lab\.example\.org\//);
    expect(oidc('not a url').length).toBe(1);
    expect(oidc('https://lab.example.org:8443/hub/oauth_callback')).toEqual([]);
  });

  it('refuses an OIDC issuer or callback on a port that fetch and browsers refuse to connect to', () => {
    const oidc = (issuer: string, redirect_url?: string) => problems({ oidc: { issuer, client_id: 'a', client_secret: 'b', redirect_url } });
    expect(oidc('https://id.example.org:10080').join()).toMatch(/^oidc\.issuer: port 10080 is one that browsers and Node's fetch refuse/);
    expect(oidc('https://id.example.org', 'https://lab.example.org:6667/hub/oauth_callback').join()).toMatch(/^oidc\.redirect_url: port 6667 /);
    expect(oidc('https://id.example.org:8443', 'https://lab.example.org:10081/hub/oauth_callback')).toEqual([]);
  });
});
