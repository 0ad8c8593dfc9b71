import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { Culler, cullerInstalled, problems } from '../helpers/idle-culler.js';
import type { IdleState } from '../../hub/servers/idle-culler.js';

/**
 * Idle culling and its warnings (issue 20 item 4) on a real hub, with real jupyterhub-singleuser servers started by
 * the local spawner: the idle endpoint counts down from the last activity and warns in the last `warn_before`
 * seconds, activity posted as the page's "Keep it running" does resets it, the built-in culler stops a server idle
 * past the timeout and says why in the audit log, and leaves one kept alive alone.
 */
const singleuser = findSingleuser(5);
const ready = requireService('jupyterhub-singleuser 5.x', singleuser !== null);

const TIMEOUT = 12;
const WARN_BEFORE = 8;

interface AuditItem { time: string; action: string; actor: { kind: string }; target: { name: string } | null; details: Record<string, unknown> }

describe.skipIf(!ready)('built-in idle culling with warnings, local spawner', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify([singleuser ?? '']), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_AUTHENTICATOR__KIND: 'dummy',
      LABHUB_IDLE_CULLING: `{enabled: true, timeout: ${TIMEOUT}, warn_before: ${WARN_BEFORE}, check_interval: 1}`,
    },
  });
  let admin = '';
  const tokens: Record<string, string> = {};

  const idle = async (user: string, token = tokens[user]!) => {
    const res = await api(hub.url, token, 'GET', `/users/${user}/server/idle`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as IdleState;
  };
  /** What the page's "Keep it running" button sends, with the user's own token. */
  const keep = async (user: string) => {
    const now = new Date().toISOString();
    const res = await api(hub.url, tokens[user]!, 'POST', `/users/${user}/activity`, { servers: { '': { last_activity: now } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return now;
  };
  const running = async (user: string) => ((await api(hub.url, admin, 'GET', `/users/${user}`)).body as { server: string | null }).server !== null;
  const start = async (user: string) => {
    const res = await api(hub.url, tokens[user]!, 'POST', `/users/${user}/server`);
    expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
    await eventually(() => running(user), 60_000, 250);
  };

  /** bo's server, kept active past several timeouts while the other tests run (they take that long anyway). */
  let boKept: Promise<void>;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'root'])).stdout.trim();
    for (const name of ['ann', 'bo']) {
      expect((await hub.cli(['users', 'add', name])).status).toBe(0);
      tokens[name] = (await hub.cli(['token', name])).stdout.trim();
    }
    await start('bo');
    boKept = (async () => {
      const until = Date.now() + 2 * TIMEOUT * 1000;
      while (Date.now() < until) {
        await keep('bo');
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    boKept.catch(() => undefined);
  });
  afterAll(async () => {
    for (const name of ['ann', 'bo']) await api(hub.url, admin, 'DELETE', `/users/${name}/server`).catch(() => undefined);
    await hub.cleanup();
  });

  it('counts down from the last activity, warns in the last warn_before seconds, and activity resets it', async () => {
    await start('ann');
    const posted = await keep('ann');
    const fresh = await idle('ann');
    expect(fresh).toMatchObject({ warning: false, timeout: TIMEOUT, warn_before: WARN_BEFORE, last_activity: posted });
    expect(Date.parse(fresh.cull_at!)).toBe(Date.parse(posted) + TIMEOUT * 1000);
    expect(fresh.seconds_left).toBeGreaterThan(WARN_BEFORE);
    expect(fresh.seconds_left).toBeLessThanOrEqual(TIMEOUT);

    const warned = await eventually(async () => { const s = await idle('ann'); return s.warning ? s : null; }, 15_000, 250);
    expect(warned.seconds_left).toBeLessThanOrEqual(WARN_BEFORE);
    expect(await running('ann')).toBe(true);

    const again = await keep('ann');
    const reset = await idle('ann');
    expect(reset).toMatchObject({ warning: false, last_activity: again });
    expect(reset.seconds_left).toBeGreaterThan(WARN_BEFORE);
  });

  it('stops the server once it has been idle for the timeout, with the hub as actor and reason idle in the audit log', async () => {
    const last = (await idle('ann')).last_activity!;
    await eventually(async () => !(await running('ann')), 40_000, 250);
    // The stop's outcome is recorded once the stop has finished, just after the server shows as stopped.
    const stops = await eventually(async () => {
      const items = ((await api(hub.url, admin, 'GET', '/audit?kind=server.stop&user=ann')).body as AuditItem[]).filter((i) => i.details.reason === 'idle');
      return items.length === 2 ? items : null;
    }, 10_000, 250);
    expect(stops.map((i) => i.details.outcome).sort()).toEqual(['requested', 'stopped']);
    for (const item of stops) expect(item).toMatchObject({ actor: { kind: 'system' }, target: { name: 'ann' }, details: { server: '' } });
    const requested = stops.find((i) => i.details.outcome === 'requested')!;
    expect(Date.parse(requested.time)).toBeGreaterThanOrEqual(Date.parse(last) + TIMEOUT * 1000);
    expect(await idle('ann')).toMatchObject({ cull_at: null, seconds_left: null, warning: false });
    expect(hub.output).toContain('stopping an idle server');
  });

  it('leaves a server alone while its activity keeps coming, past several timeouts', async () => {
    await boKept;
    expect(await running('bo')).toBe(true);
    expect((await idle('bo')).warning).toBe(false);
    const audit = await api(hub.url, admin, 'GET', '/audit?kind=server.stop&user=bo');
    expect(audit.body).toEqual([]);
  });

  it('is read with read:servers on that server: another user gets 404, no token 403, bad names 400', async () => {
    expect(await api(hub.url, tokens.bo!, 'GET', '/users/ann/server/idle')).toMatchObject({ status: 404, body: { status: 404 } });
    expect(await api(hub.url, '', 'GET', '/users/bo/server/idle')).toMatchObject({ status: 403, body: { status: 403 } });
    const narrow = (await hub.cli(['token', 'bo', '--scopes', 'users:activity'])).stdout.trim();
    expect(await api(hub.url, narrow, 'GET', '/users/bo/server/idle')).toMatchObject({ status: 403, body: { status: 403 } });
    // Named servers are off on this hub, as on the other server endpoints.
    expect(await api(hub.url, tokens.bo!, 'GET', '/users/bo/servers/lab/idle')).toMatchObject({ status: 400, body: { status: 400 } });
    expect(await api(hub.url, admin, 'GET', '/users/nobody/server/idle')).toMatchObject({ status: 404, body: { status: 404 } });
    expect((await idle('bo', admin)).cull_at).not.toBeNull();
  });
});

describe('idle warnings without the built-in culler', () => {
  // Warnings for an external culler run with the same --timeout: the hub counts down but never stops a server.
  const warnOnly = new HubProcess({
    env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_ALLOW_NAMED_SERVERS: 'true', LABHUB_IDLE_CULLING: '{timeout: 3, warn_before: 2, check_interval: 1}' },
  });
  const off = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant' } });
  const token: Record<string, string> = {};

  beforeAll(async () => {
    await Promise.all([warnOnly.start(), off.start()]);
    for (const [name, hub] of Object.entries({ warnOnly, off })) {
      expect((await hub.cli(['users', 'add', 'cy'])).status).toBe(0);
      token[name] = (await hub.cli(['token', 'cy'])).stdout.trim();
    }
  });
  afterAll(() => Promise.all([warnOnly.cleanup(), off.cleanup()]));

  it('with only a timeout, warns past it but leaves the stopping to the external culler', async () => {
    expect((await api(warnOnly.url, token.warnOnly!, 'POST', '/users/cy/servers/lab')).status).toBeLessThan(300);
    const path = '/users/cy/servers/lab/idle';
    await eventually(async () => ((await api(warnOnly.url, token.warnOnly!, 'GET', path)).body as IdleState).seconds_left === 0, 15_000, 250);
    // Several check intervals past the timeout.
    await new Promise((r) => setTimeout(r, 3000));
    const state = await api(warnOnly.url, token.warnOnly!, 'GET', path);
    expect(state.body).toMatchObject({ warning: true, seconds_left: 0, timeout: 3, warn_before: 2 });
    expect((await api(warnOnly.url, token.warnOnly!, 'GET', '/users/cy/servers/lab')).body).toMatchObject({ ready: true });
    expect(await api(warnOnly.url, token.warnOnly!, 'GET', '/users/cy/servers/none/idle')).toMatchObject({ status: 404, body: { status: 404 } });
  });

  it('with idle_culling unset, a running server has no cull time', async () => {
    expect((await api(off.url, token.off!, 'POST', '/users/cy/server')).status).toBeLessThan(300);
    const state = await api(off.url, token.off!, 'GET', '/users/cy/server/idle');
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ cull_at: null, seconds_left: null, warning: false, timeout: null, warn_before: null });
    expect((state.body as IdleState).last_activity).not.toBeNull();
  });
});

describe.skipIf(!requireService('jupyterhub-idle-culler', cullerInstalled()))('idle warnings for the external jupyterhub-idle-culler', () => {
  // The hub warns by the culler's --timeout; the culler stops what the hub warned about, and spares what was kept.
  const cullerToken = randomBytes(16).toString('hex');
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_IDLE_CULLING: '{timeout: 6, warn_before: 4}',
      LABHUB_SERVICES: `[{name: culler, api_token: ${cullerToken}}]`,
      LABHUB_ROLES: '[{name: culler, scopes: [list:users, read:users:activity, read:servers, delete:servers], services: [culler]}]',
    },
  });
  let culler: Culler | undefined;
  const token: Record<string, string> = {};
  const idle = async (user: string) => (await api(hub.url, token[user]!, 'GET', `/users/${user}/server/idle`)).body as IdleState;
  const running = async (user: string) => ((await api(hub.url, token[user]!, 'GET', `/users/${user}`)).body as { server: string | null }).server !== null;

  beforeAll(async () => {
    await hub.start();
    for (const name of ['dee', 'eve']) {
      expect((await hub.cli(['users', 'add', name])).status).toBe(0);
      token[name] = (await hub.cli(['token', name])).stdout.trim();
      expect((await api(hub.url, token[name], 'POST', `/users/${name}/server`)).status).toBeLessThan(300);
    }
  });
  afterAll(async () => {
    await culler?.stop();
    await hub.cleanup();
  });

  it('the culler stops the idle server after the cull time the hub announced, and not the one kept active', async () => {
    culler = new Culler(`${hub.url}/hub/api`, cullerToken);
    culler.start(['--timeout=6', '--cull-every=1']);
    const keepDee = (async () => {
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        const now = new Date().toISOString();
        expect((await api(hub.url, token.dee!, 'POST', '/users/dee/activity', { servers: { '': { last_activity: now } } })).status).toBe(200);
        await new Promise((r) => setTimeout(r, 1500));
      }
    })();
    const announced = await eventually(async () => { const s = await idle('eve'); return s.warning ? s : null; }, 10_000, 250);
    await eventually(async () => !(await running('eve')), 30_000, 250);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(announced.cull_at!));
    await keepDee;
    expect(await running('dee')).toBe(true);
    expect(await idle('dee')).toMatchObject({ warning: false });
    const output = await culler.stop();
    expect(output).toMatch(/Culling server eve/);
    expect(problems(output), output).toEqual([]);
  });
});
