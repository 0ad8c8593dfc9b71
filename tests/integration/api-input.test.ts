/**
 * Bad input on every write endpoint of the REST API, against a real `labhub start` (instant spawner, dummy
 * authenticator). Every refusal must be JupyterHub's error shape, `{"status": <the HTTP status>, "message": "…"}`
 * as JSON, and nothing a client sends may make the hub answer 500 or log an unhandled error.
 */
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubProcess } from '../helpers/hub.js';
import { apiCall, validateResponse, type ApiAnswer, type ApiCallOptions } from '../helpers/openapi.js';

describe('REST API input validation', () => {
  const hub = new HubProcess({
    env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_ALLOW_NAMED_SERVERS: 'true' },
  });
  let admin = '';
  let annToken = '';

  const call = (method: string, path: string, options: ApiCallOptions = {}) => apiCall(hub.url, method, path, { token: admin, ...options });

  /** JupyterHub's error answer: JSON `{status, message}` with `status` equal to the HTTP status. */
  function isError(res: ApiAnswer, status: number | number[], what = ''): void {
    const allowed = Array.isArray(status) ? status : [status];
    expect(allowed, `${what} answered ${res.status}: ${res.text.slice(0, 300)}`).toContain(res.status);
    expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
    expect(res.body, what).toEqual({ status: res.status, message: expect.any(String) });
    expect((res.body as { message: string }).message.length, what).toBeGreaterThan(0);
  }

  /**
   * A request whose path is sent byte for byte (fetch would resolve `..` and `%2e%2e` segments itself), through the
   * proxy or, with `direct`, to the hub's own port, where notebook servers and services call the API.
   */
  function rawCall(method: string, path: string, body?: string, direct = false): Promise<ApiAnswer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(direct ? `http://127.0.0.1:${hub.hubPort}${path}` : `${hub.url}${path}`, {
        method, path, headers: { authorization: `token ${admin}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        timeout: 15_000,
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = undefined;
          }
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers, text, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  beforeAll(async () => {
    await hub.start();
    for (const [name, extra] of [['admin', ['--admin']], ['ann', []], ['ben', []]] as const) {
      const added = await hub.cli(['users', 'add', name, ...extra]);
      expect(added.status, added.stderr).toBe(0);
    }
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    annToken = (await hub.cli(['token', 'ann'])).stdout.trim();
    expect(admin).not.toBe('');
    expect(annToken).not.toBe('');
    expect((await call('POST', '/groups/grp')).status).toBe(201);
  });

  afterAll(async () => {
    await hub.cleanup();
    if (hub.child?.exitCode === null) hub.kill9();
  });

  /** Every write endpoint that reads a JSON body. PATCH /users/{name} and POST /groups only ever get invalid bodies here. */
  const BODY_ENDPOINTS: Array<[string, string]> = [
    ['POST', '/users'],
    ['POST', '/users/newbie'],
    ['PATCH', '/users/ann'],
    ['POST', '/users/ann/activity'],
    ['POST', '/users/ann/server'],
    ['DELETE', '/users/ann/server'],
    ['POST', '/users/ann/servers/lab'],
    ['DELETE', '/users/ann/servers/lab'],
    ['POST', '/users/ann/tokens'],
    ['POST', '/groups'],
    ['POST', '/groups/newgroup'],
    ['POST', '/groups/grp/users'],
    ['DELETE', '/groups/grp/users'],
    ['PUT', '/groups/grp/properties'],
  ];

  describe('malformed bodies', () => {
    it.each(BODY_ENDPOINTS)('%s %s: malformed JSON answers 400', async (method, path) => {
      for (const body of ['{"usernames": [', '{bad json}', "{'single': 'quotes'}", '{"a":1}}', '\u0000']) {
        isError(await call(method, path, { body }), 400, `${method} ${path} ${JSON.stringify(body)}`);
      }
    });

    it.each(BODY_ENDPOINTS)('%s %s: a body over 1 MB answers 413', async (method, path) => {
      const big = JSON.stringify({ usernames: ['x'], pad: 'y'.repeat(1_100_000) });
      isError(await call(method, path, { body: big }), 413, `${method} ${path}`);
    });

    it('malformed JSON is refused before authentication, still as JSON', async () => {
      isError(await apiCall(hub.url, 'POST', '/users', { body: '{' }), 400);
    });

    it('a gzip body that inflates past 1 MB answers 413', async () => {
      const res = await call('POST', '/users', {
        body: new Uint8Array(gzipSync(Buffer.from(JSON.stringify({ usernames: ['x'], pad: 'z'.repeat(2_000_000) })))),
        headers: { 'content-encoding': 'gzip' },
      });
      isError(res, 413);
    });

    it('an unknown content encoding or charset is a client error', async () => {
      isError(await call('POST', '/users', { body: '{"usernames":["enc"]}', headers: { 'content-encoding': 'bogus' } }), 415);
      isError(await call('POST', '/users', { body: '{"usernames":["enc"]}', headers: { 'content-type': 'application/json; charset=bogus-8' } }), 415);
    });

    it('a JSON body is read whatever its Content-Type, as JupyterHub does', async () => {
      const res = await call('POST', '/users', { body: '{"usernames":["plain"]}', headers: { 'content-type': 'text/plain' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject([{ name: 'plain' }]);
    });

    it('deeply nested JSON in group properties is refused, not a 500', async () => {
      const deep = `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
      isError(await call('PUT', '/groups/grp/properties', { body: deep }), [400, 413]);
    });

    it('deeply nested JSON in user options is refused, not a 500', async () => {
      const deep = `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
      isError(await call('POST', '/users/ben/server', { body: deep }), [400, 413]);
      // Whatever happened, ben's server is not left half-started.
      const ben = await call('GET', '/users/ben');
      expect(ben.body).toMatchObject({ pending: null });
      if ((ben.body as { server: string | null }).server) expect((await call('DELETE', '/users/ben/server')).status).toBe(204);
    });
  });

  describe('users', () => {
    it('POST /users: wrong types, missing or unknown fields answer 400', async () => {
      for (const body of [
        { usernames: 'carol' }, { usernames: [1, 2] }, { usernames: [null] }, { usernames: [{ name: 'x' }] }, { usernames: [] },
        { usernames: ['carol'], admin: 'yes' }, { usernames: ['carol'], admin: 1 }, { usernames: ['carol'], bogus: true },
        {}, [], ['carol'], 'carol', 5, null,
      ]) {
        isError(await call('POST', '/users', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      isError(await call('POST', '/users'), 400, 'no body');
      expect((await call('GET', '/users/carol')).status).toBe(404);
    });

    it('POST /users/{name}: wrong types and unknown fields answer 400', async () => {
      for (const body of [{ admin: 'yes' }, { admin: null, x: 1 }, { bogus: 1 }, [], 'x', 7]) {
        isError(await call('POST', '/users/dora', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      expect((await call('GET', '/users/dora')).status).toBe(404);
    });

    it('PATCH /users/{name}: wrong types and unknown fields answer 400 (and change nothing)', async () => {
      for (const body of [
        { admin: 'yes' }, { admin: 1 }, { name: 5 }, { name: null }, { groups: 'grp' }, { auth_state: 'x' }, { bogus: 1 }, [], 'x', 3,
        { name: 'a/b' }, { name: '..' }, { name: 'x'.repeat(300) }, { name: 'bad\u0007name' }, { name: '' },
      ]) {
        isError(await call('PATCH', '/users/ann', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      expect((await call('GET', '/users/ann')).body).toMatchObject({ name: 'ann', admin: false });
    });

    it('usernames with / (URL-encoded in the path) answer 400', async () => {
      for (const [method, path] of [['GET', '/users/a%2Fb'], ['POST', '/users/a%2Fb'], ['DELETE', '/users/a%2Fb'], ['POST', '/users/a%2Fb/tokens']] as const) {
        isError(await call(method, path), 400, `${method} ${path}`);
      }
      isError(await call('POST', '/users', { body: { usernames: ['a/b'] } }), 400);
    });

    it('usernames . and .. answer 400', async () => {
      for (const name of ['.', '..']) isError(await call('POST', '/users', { body: { usernames: [name] } }), 400, name);
      for (const path of ['/hub/api/users/%2e%2e', '/hub/api/users/%2E%2E/server']) {
        const res = await rawCall('POST', path);
        expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(res.status, path).toBeLessThan(500);
      }
    });

    it('uppercase usernames are normalized to lowercase', async () => {
      const one = await call('POST', '/users/Alice');
      expect(one.status).toBe(201);
      expect(one.body).toMatchObject({ name: 'alice' });
      const read = await call('GET', '/users/ALICE');
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ name: 'alice' });
      const bulk = await call('POST', '/users', { body: { usernames: ['Bert', 'CHARLIE'] } });
      expect(bulk.status).toBe(201);
      expect((bulk.body as Array<{ name: string }>).map((u) => u.name).sort()).toEqual(['bert', 'charlie']);
      isError(await call('POST', '/users/aLiCe'), 409);
    });

    it('letters of any script are allowed', async () => {
      for (const name of ['jürgen', 'zoë', '日本語', 'ольга', 'δημήτρης', 'a.b_c-d@e+f']) {
        const res = await call('POST', `/users/${encodeURIComponent(name)}`);
        expect(res.status, `${name}: ${res.text.slice(0, 200)}`).toBe(201);
        expect(validateResponse('post', '/users/{name}', 201, res.body)).toEqual([]);
        expect(res.body).toMatchObject({ name: name.normalize('NFKC').toLowerCase() });
      }
    });

    it('control characters, whitespace and other punctuation in usernames answer 400', async () => {
      for (const name of ['a\u0000b', 'a\u0007b', 'tab\there', 'new\nline', 'del\u007f', 'c1\u0085x', ' lead', 'trail ', 'sp ace', 'q"uote', 'a?b', 'a#b', 'a%b', 'a\\b', '-dash', '']) {
        isError(await call('POST', '/users', { body: { usernames: [name] } }), 400, JSON.stringify(name));
        if (name !== '') isError(await call('POST', `/users/${encodeURIComponent(name)}`), 400, `path ${JSON.stringify(name)}`);
      }
    });

    it('300-character usernames answer 400, in the body and in the path', async () => {
      const long = 'a'.repeat(300);
      isError(await call('POST', '/users', { body: { usernames: [long] } }), 400);
      isError(await call('POST', `/users/${long}`), 400);
      isError(await call('GET', `/users/${long}`), 400);
      isError(await call('POST', '/users', { body: { usernames: ['ok-name-1', long] } }), 400);
      expect((await call('GET', '/users/ok-name-1')).status).toBe(404);
    });

    it('a path that is not valid percent-encoding answers 400', async () => {
      // The proxy refuses it itself (its own page); the hub, called directly as servers and services do, must too.
      expect((await rawCall('GET', '/hub/api/users/%E0%A4%A')).status).toBe(400);
      for (const path of ['/hub/api/users/%E0%A4%A', '/hub/api/users/%ZZ/server', '/hub/api/groups/%C0%AF', '/hub/api/users/ann/tokens/%']) {
        isError(await rawCall('GET', path, undefined, true), 400, `${path} (direct)`);
      }
    });

    it('GET /users: bad pagination, state and sort answer 400', async () => {
      for (const query of [
        'limit=abc', 'offset=abc', 'limit=1.5', 'offset=1e3', 'limit=', 'offset=-x',
        'state=running', 'state=ACTIVE', 'state=active,ready', 'sort=password', 'sort=--name', 'sort=', 'sort=name;drop',
      ]) {
        isError(await call('GET', `/users?${query}`), 400, query);
        isError(await call('GET', `/users?${query}`, { headers: { accept: 'application/jupyterhub-pagination+json' } }), 400, `${query} (paginated)`);
      }
    });

    it('GET /groups: bad pagination answers 400', async () => {
      for (const query of ['limit=abc', 'offset=x', 'limit=1.5']) isError(await call('GET', `/groups?${query}`), 400, query);
    });

    it('POST /users/{name}/activity: bad bodies and timestamps answer 400', async () => {
      const future = new Date(Date.now() + 2 * 3600_000).toISOString();
      for (const body of [
        {}, { last_activity: 'yesterday' }, { last_activity: 5 }, { last_activity: null }, { last_activity: '2024-13-45T99:00:00Z' },
        { last_activity: future }, { last_activity: '+275760-09-13T00:00:00.000Z' }, { servers: 'x' }, { servers: { '': {} } },
        { servers: { '': { last_activity: 'nope' } } }, { servers: { nosuch: { last_activity: new Date().toISOString() } } },
        { servers: { '': { last_activity: future } } }, { last_activity: new Date().toISOString(), bogus: 1 }, [], 'x',
      ]) {
        isError(await call('POST', '/users/ann/activity', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      isError(await call('POST', '/users/ann/activity'), 400, 'no body');
      const near = await call('POST', '/users/ann/activity', { body: { last_activity: new Date(Date.now() + 30 * 60_000).toISOString() } });
      expect(near.status, 'up to 59 minutes ahead is accepted (clock skew)').toBe(200);
      isError(await call('POST', '/users/nobody-here/activity', { body: { last_activity: new Date().toISOString() } }), 404);
    });
  });

  describe('servers', () => {
    it('POST /users/{name}/server: a body that is not a JSON object answers 400', async () => {
      for (const body of ['[1,2]', '"text"', '5', 'true']) {
        isError(await call('POST', '/users/ben/server', { body }), 400, body);
      }
      expect((await call('GET', '/users/ben')).body).toMatchObject({ server: null, pending: null });
    });

    it('DELETE server bodies: wrong types and unknown fields answer 400', async () => {
      for (const body of [{ remove: 'yes' }, { remove: 1 }, { bogus: true }, [], '"x"']) {
        isError(await call('DELETE', '/users/ben/server', { body: typeof body === 'string' ? body : JSON.stringify(body) }), 400, JSON.stringify(body));
        isError(await call('DELETE', '/users/ben/servers/lab', { body: typeof body === 'string' ? body : JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      isError(await call('DELETE', '/users/ben/server', { body: { remove: true } }), 400, 'remove the default server');
    });

    it('bad server names answer 400', async () => {
      for (const server of ['a%2Fb', 'with%20space', '-lead', 'x'.repeat(64), 'bad%07name', 'a%00b']) {
        isError(await call('POST', `/users/ben/servers/${server}`), 400, server);
        isError(await call('DELETE', `/users/ben/servers/${server}`), 400, server);
      }
      for (const path of ['/hub/api/users/ben/servers/%2e%2e', '/hub/api/users/ben/servers/..%2F..']) {
        const res = await rawCall('POST', path);
        expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(res.status, path).toBeLessThan(500);
      }
    });

    it('servers of unknown users answer 404', async () => {
      isError(await call('POST', '/users/nobody-here/server'), 404);
      isError(await call('DELETE', '/users/nobody-here/server'), 404);
      isError(await call('GET', '/users/nobody-here/server/progress'), 404);
    });
  });

  describe('tokens', () => {
    it('expires_in must be a positive number of seconds', async () => {
      for (const expires of ['-1', '"x"', '"3600"', 'true', '[1]', '{"s": 1}', '1e400', '-1e400']) {
        const body = `{"expires_in": ${expires}}`;
        isError(await call('POST', '/users/ann/tokens', { body }), 400, body);
      }
    });

    it('expires_in null or 0 means no expiry, as the spec says', async () => {
      for (const expires of [null, 0]) {
        const res = await call('POST', '/users/ann/tokens', { body: { expires_in: expires } });
        expect(res.status, `expires_in ${expires}: ${res.text.slice(0, 200)}`).toBe(201);
        expect(res.body).toMatchObject({ expires_at: null });
      }
    });

    it('bad scopes, notes and unknown fields answer 400', async () => {
      for (const body of [
        { scopes: 'read:users' }, { scopes: [5] }, { scopes: ['no-such-scope'] }, { scopes: ['read:users!bogus=x'] }, { scopes: ['read:users!user='] },
        { note: 5 }, { note: 'n'.repeat(100_000) }, { roles: 'user' }, { bogus: 1 }, [], 'x',
      ]) {
        isError(await call('POST', '/users/ann/tokens', { body: JSON.stringify(body) }), 400, JSON.stringify(body).slice(0, 100));
      }
    });

    it('scopes the owner does not hold answer 400', async () => {
      for (const scopes of [['admin:users'], ['read:users'], ['servers!user=ben'], ['read:users!user=ann', 'shutdown']]) {
        isError(await call('POST', '/users/ann/tokens', { body: { scopes } }), 400, `admin for ann: ${scopes.join(',')}`);
        isError(await apiCall(hub.url, 'POST', '/users/ann/tokens', { token: annToken, body: { scopes } }), 400, `ann: ${scopes.join(',')}`);
      }
      const ok = await apiCall(hub.url, 'POST', '/users/ann/tokens', { token: annToken, body: { scopes: ['read:users!user=ann'] } });
      expect(ok.status).toBe(201);
    });

    it('a large limit is clamped, not refused', async () => {
      const res = await call('GET', '/users?limit=100000', { headers: { accept: 'application/jupyterhub-pagination+json' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ _pagination: { limit: 200 } });
    });

    it('malformed token ids answer 404', async () => {
      const made = await call('POST', '/users/ann/tokens', { body: { note: 'for id tests' } });
      expect(made.status).toBe(201);
      const id = (made.body as { id: string }).id;
      const n = id.slice(1);
      for (const bad of ['a0x1', 'b1', 'a-1', 'a', '1', `A${n}`, `a0${n}`, `${id}.0`, `${id} `, 'a1e3', 'a99999999999999999999', `a${n}%00`]) {
        isError(await call('GET', `/users/ann/tokens/${encodeURIComponent(bad)}`), 404, `GET ${bad}`);
        isError(await call('DELETE', `/users/ann/tokens/${encodeURIComponent(bad)}`), 404, `DELETE ${bad}`);
      }
      isError(await call('GET', `/users/ben/tokens/${id}`), 404, 'someone else\'s token id');
      expect((await call('GET', `/users/ann/tokens/${id}`)).status).toBe(200);
    });

    it('tokens of unknown users answer 404', async () => {
      isError(await call('POST', '/users/nobody-here/tokens'), 404);
      isError(await call('GET', '/users/nobody-here/tokens'), 404);
    });
  });

  describe('groups', () => {
    it('group names with / or control characters answer 400', async () => {
      for (const name of ['a%2Fb', 'bad%01name', 'bad%7Fname', 'new%0Aline', '%20lead', 'x'.repeat(300)]) {
        for (const [method, suffix] of [['POST', ''], ['GET', ''], ['DELETE', ''], ['POST', '/users'], ['PUT', '/properties']] as const) {
          const body = method === 'POST' && suffix ? { users: [] } : method === 'PUT' ? {} : undefined;
          isError(await call(method, `/groups/${name}${suffix}`, { body }), 400, `${method} /groups/${name}${suffix}`);
        }
      }
      for (const name of ['a/b', 'bad\u0001name', 'tab\tname', '', 'x'.repeat(300)]) {
        isError(await call('POST', '/groups', { body: { groups: [name] } }), 400, JSON.stringify(name));
      }
    });

    it('POST /groups: wrong types and unknown fields answer 400', async () => {
      for (const body of [{ groups: 'g' }, { groups: [] }, { groups: [5] }, { groups: ['g'], users: 'ann' }, { groups: ['g'], bogus: 1 }, {}, [], 'g']) {
        isError(await call('POST', '/groups', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      isError(await call('POST', '/groups', { body: { groups: ['g'], users: ['nobody-here'] } }), 400, 'unknown member');
      expect((await call('GET', '/groups/g')).status).toBe(404);
    });

    it('POST /groups/{name}: wrong types and unknown fields answer 400', async () => {
      for (const body of [{ users: 'ann' }, { users: [5] }, { bogus: 1 }, [], 'x']) {
        isError(await call('POST', '/groups/g7', { body: JSON.stringify(body) }), 400, JSON.stringify(body));
      }
      isError(await call('POST', '/groups/g7', { body: { users: ['nobody-here'] } }), 400, 'unknown member');
      expect((await call('GET', '/groups/g7')).status).toBe(404);
    });

    it('group membership bodies: wrong types, missing and unknown fields answer 400', async () => {
      for (const method of ['POST', 'DELETE']) {
        for (const body of [{ users: 'ann' }, { users: [5] }, {}, { users: ['ann'], bogus: 1 }, [], 'ann']) {
          isError(await call(method, '/groups/grp/users', { body: JSON.stringify(body) }), 400, `${method} ${JSON.stringify(body)}`);
        }
        isError(await call(method, '/groups/grp/users'), 400, `${method} no body`);
        isError(await call(method, '/groups/grp/users', { body: { users: ['a/b'] } }), 400, `${method} bad name`);
        isError(await call(method, '/groups/nosuch/users', { body: { users: ['ann'] } }), 404, `${method} unknown group`);
      }
      expect((await call('GET', '/groups/grp')).body).toMatchObject({ users: [] });
    });

    it('PUT /groups/{name}/properties: anything but a JSON object answers 400', async () => {
      for (const body of ['[]', '"x"', '5', 'null', '[{"a":1}]']) {
        isError(await call('PUT', '/groups/grp/properties', { body }), 400, body);
      }
      isError(await call('PUT', '/groups/nosuch/properties', { body: {} }), 404);
      expect((await call('GET', '/groups/grp')).body).toMatchObject({ properties: {} });
    });
  });

  // Kept last: a PATCH that passes validation writes in a DB transaction; if the hub hangs there, only this test fails.
  describe('PATCH /users/{name} without a change', () => {
    it('an empty body or {} answers 400: the spec requires at least one key', async () => {
      isError(await call('PATCH', '/users/ann'), 400, 'no body');
      isError(await call('PATCH', '/users/ann', { body: {} }), 400, '{}');
    });
  });

  it('no input made the hub fail: no 500 answer, no unhandled error in its output', async () => {
    // Give the last log lines time to arrive through the pipe.
    await new Promise((r) => setTimeout(r, 300));
    const failures = hub.output.split('\n').filter((line) => /"status":\s*500\b|unhandled error|"level":\s*(50|60)\b/i.test(line));
    expect(failures.map((line) => line.slice(0, 600))).toEqual([]);
    const still = await apiCall(hub.url, 'GET', '/');
    expect(still.status).toBe(200);
  });
});
