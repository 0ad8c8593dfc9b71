import { describe, expect, it } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { serviceClient, servicePrefix } from '../../hub/services/oauth-clients.js';

const services = (list: unknown[]) => configSchema.safeParse({ services: list });
const parsed = (entry: Record<string, unknown>) => configSchema.parse({ services: [entry] }).services[0]!;

describe('services in config and their OAuth clients', () => {
  it('derives JupyterHub\'s client: service-<name>, back to /services/<name>/oauth_callback, its access scope first', () => {
    const client = serviceClient(parsed({ name: 'grader', url: 'http://127.0.0.1:9000', api_token: 'grader-token-1', oauth_client_allowed_scopes: ['read:users:name!user'] }));
    expect(client).toEqual({
      identifier: 'service-grader', redirectUri: `${servicePrefix('grader')}oauth_callback`,
      allowedScopes: ['access:services!service=grader', 'read:users:name!user'],
    });
    expect(serviceClient(parsed({ name: 'x', api_token: 'x-token-123', oauth_redirect_uri: 'https://x.example.org/cb', oauth_client_id: 'x-app' })))
      .toMatchObject({ identifier: 'x-app', redirectUri: 'https://x.example.org/cb' });
  });

  it('gives no client without a secret or without anywhere to send users back', () => {
    expect(serviceClient(parsed({ name: 'culler', api_token: 'culler-token-1' }))).toBeNull();
    expect(serviceClient(parsed({ name: 'page', url: 'http://127.0.0.1:9000' }))).toBeNull();
  });

  it('refuses clients that would collide or impersonate a server, and redirects that leave for other schemes', () => {
    expect(services([{ name: 'a', oauth_client_id: 'jupyterhub-user-abc' }]).success).toBe(false);
    expect(services([{ name: 'a', oauth_client_id: 'shared' }, { name: 'b', oauth_client_id: 'shared' }]).success).toBe(false);
    expect(services([{ name: 'a', oauth_client_id: 'service-b' }, { name: 'b' }]).success).toBe(false);
    expect(services([{ name: 'a' }, { name: 'a' }]).success).toBe(false);
    for (const uri of ['//evil.example.org/cb', 'javascript:alert(1)', 'ftp://x/cb', 'relative/cb']) {
      expect(services([{ name: 'a', oauth_redirect_uri: uri }]).success, uri).toBe(false);
    }
    expect(services([{ name: 'a', url: 'file:///etc/passwd' }]).success).toBe(false);
    expect(services([{ name: 'a', url: 'http://127.0.0.1:1/', oauth_redirect_uri: '/services/a/cb' }]).success).toBe(true);
  });
});
