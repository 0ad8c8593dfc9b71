import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../hub/config/load.js';
import { idlePolicy, idleState } from '../../hub/servers/idle-culler.js';

/** `idle_culling` (issue 20 item 4): its config is checked at start-up, and what the idle endpoint computes from it. */
function refusal(value: string): string {
  try {
    loadConfig({ env: { LABHUB_IDLE_CULLING: value } });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`idle_culling ${value} was accepted`);
}

describe('idle_culling config', () => {
  it('is off by default, with a one-hour timeout when enabled and a 10-minute warning', () => {
    const { idle_culling: idle } = loadConfig({ env: {} });
    expect(idle).toEqual({ enabled: false, warn_before: 600, check_interval: 60 });
    expect(idlePolicy(idle)).toBeNull();
  });

  it('enabled alone culls after an hour; a timeout alone gives warnings for an external culler', () => {
    expect(idlePolicy(loadConfig({ env: { LABHUB_IDLE_CULLING__ENABLED: 'true' } }).idle_culling)).toEqual({ timeoutS: 3600, warnBeforeS: 600 });
    const warnOnly = loadConfig({ env: { LABHUB_IDLE_CULLING: '{timeout: 7200}' } }).idle_culling;
    expect(warnOnly.enabled).toBe(false);
    expect(idlePolicy(warnOnly)).toEqual({ timeoutS: 7200, warnBeforeS: 600 });
  });

  it('refuses a warning that starts before the timeout does, naming the key and the timeout', () => {
    expect(refusal('{timeout: 300}')).toContain('idle_culling.warn_before: must be less than idle_culling.timeout (300 s)');
    expect(refusal('{enabled: true, warn_before: 3600}')).toContain('idle_culling.warn_before: must be less than idle_culling.timeout (3600 s, its default)');
    expect(refusal('{timeout: 60, warn_before: 60}')).toContain('idle_culling.warn_before');
  });

  it('refuses values out of bounds, of the wrong type and unknown keys', () => {
    expect(refusal('{timeout: 0, warn_before: 0}')).toMatch(/idle_culling\.timeout: /);
    expect(refusal('{timeout: 100000000}')).toMatch(/idle_culling\.timeout: /);
    expect(refusal('{warn_before: -1}')).toMatch(/idle_culling\.warn_before: /);
    expect(refusal('{check_interval: 0}')).toMatch(/idle_culling\.check_interval: /);
    expect(refusal('{check_interval: 7200}')).toMatch(/idle_culling\.check_interval: /);
    expect(refusal('{enabled: yes}')).toMatch(/idle_culling\.enabled: /);
    expect(refusal('{timeout: "1h"}')).toMatch(/idle_culling\.timeout: /);
    expect(refusal('{timout: 60}')).toContain('idle_culling.timout: unknown key');
  });
});

describe('idleState', () => {
  const policy = { timeoutS: 600, warnBeforeS: 120 };
  const at = (iso: string) => Date.parse(iso);
  const running = { status: 'running', last_activity: '2026-01-01T10:00:00.000Z', started: '2026-01-01T09:00:00.000Z' };

  it('counts from the last activity: no warning until warn_before seconds remain, then zero past the cull time', () => {
    expect(idleState(running, policy, at('2026-01-01T10:07:59.500Z'))).toEqual({
      last_activity: running.last_activity, cull_at: '2026-01-01T10:10:00.000Z', seconds_left: 121, warning: false, timeout: 600, warn_before: 120,
    });
    expect(idleState(running, policy, at('2026-01-01T10:08:00.000Z'))).toMatchObject({ seconds_left: 120, warning: true });
    expect(idleState(running, policy, at('2026-01-01T10:12:00.000Z'))).toMatchObject({ seconds_left: 0, warning: true });
  });

  it('falls back to the start time for a server that reported no activity', () => {
    expect(idleState({ ...running, last_activity: null }, policy, at('2026-01-01T09:01:00.000Z')))
      .toMatchObject({ last_activity: running.started, cull_at: '2026-01-01T09:10:00.000Z', seconds_left: 540 });
  });

  it('has no cull time for a server not running, a server that does not exist, or without a policy', () => {
    const off = { cull_at: null, seconds_left: null, warning: false };
    expect(idleState({ ...running, status: 'starting' }, policy, at('2026-01-01T10:09:00.000Z'))).toMatchObject({ ...off, timeout: 600 });
    expect(idleState({ ...running, status: 'stopped' }, policy, at('2026-01-01T10:09:00.000Z'))).toMatchObject(off);
    expect(idleState(undefined, policy, at('2026-01-01T10:09:00.000Z'))).toMatchObject({ ...off, last_activity: null });
    expect(idleState(running, null, at('2026-01-01T10:09:00.000Z'))).toEqual({ ...off, last_activity: running.last_activity, timeout: null, warn_before: null });
  });
});
