import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { proxyEntryProblem, TrustedProxies } from '../../hub/auth/trusted-proxies.js';

const quiet = createLogger('test.trusted-proxies', { level: 'silent' });
const trustedFor = (env: Record<string, string>) => TrustedProxies.fromConfig(loadConfig({ env }), quiet);

describe('trusted proxies', () => {
  it('a managed proxy runs on loopback: loopback is trusted, nothing else is', () => {
    const trusted = trustedFor({});
    for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) expect(trusted.trusts(a), a).toBe(true);
    for (const a of ['10.0.0.1', '192.0.2.1', '::ffff:10.0.0.1', 'fe80::1', 'not-an-address', '']) expect(trusted.trusts(a), a).toBe(false);
  });

  it('an external proxy is trusted by the host the hub names, and loopback no more', () => {
    const trusted = trustedFor({ LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URL: 'http://10.1.2.3:8001' });
    expect(trusted.trusts('10.1.2.3')).toBe(true);
    expect(trusted.trusts('127.0.0.1')).toBe(false);
    const replicas = trustedFor({ LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URLS: '["http://10.1.2.4:8001", "http://[fd00::7]:8001"]' });
    expect(replicas.trusts('10.1.2.4')).toBe(true);
    expect(replicas.trusts('fd00::7')).toBe(true);
    expect(replicas.trusts('10.1.2.3')).toBe(false);
  });

  it('hub.trusted_proxies adds addresses, CIDR blocks and host names (resolved)', async () => {
    const trusted = trustedFor({
      LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__API_URL: 'http://10.1.2.3:8001',
      LABHUB_HUB__TRUSTED_PROXIES: '["10.42.0.0/16", "192.0.2.9", "localhost"]',
    });
    expect(trusted.trusts('10.42.7.1')).toBe(true);
    expect(trusted.trusts('10.43.0.1')).toBe(false);
    expect(trusted.trusts('192.0.2.9')).toBe(true);
    expect(trusted.trusts('127.0.0.1')).toBe(false);
    await trusted.start();
    expect(trusted.trusts('127.0.0.1')).toBe(true);
    trusted.close();
  });

  it('config refuses entries that are none of those', () => {
    for (const ok of ['10.0.0.1', '10.0.0.0/8', 'fd00::/8', 'labhub-proxy-pods', 'proxy.lab.svc.cluster.local']) expect(proxyEntryProblem(ok), ok).toBeNull();
    for (const bad of ['10.0.0.0/33', '10.0.0.1/8/1', 'host/8', '-bad', 'a b', '', 'http://proxy']) expect(proxyEntryProblem(bad), bad).not.toBeNull();
    expect(() => loadConfig({ env: { LABHUB_HUB__TRUSTED_PROXIES: '["10.0.0.0/40"]' } })).toThrow(/hub\.trusted_proxies/);
  });
});
