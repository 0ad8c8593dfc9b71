import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, HubProcess } from '../helpers/hub.js';
import { apiCall, hasOperation, specPath, validateResponse } from '../helpers/openapi.js';

/**
 * Property-based fuzzing of every operation of JupyterHub's REST API specs (5.5.1 and 6.0.0b2) against a real hub:
 * random path parameters (fixture names, nasty strings), query parameters and bodies (JSON of any shape, the
 * operation's own keys with wrong values, text that is not JSON), sent with an admin token, a narrow token and
 * none. Whatever comes in: never a 5xx, every refusal a 4xx JSON `{status, message}`, every 2xx JSON body valid
 * against the 5.5.1 spec where it has the operation.
 */
const SPECS = [specPath('5.5.1'), specPath('6.0.0b2')];
/** Operations that would end the run rather than test it: they stop the hub or move it to another proxy. */
const LEFT_OUT = new Set(['post /shutdown', 'patch /proxy']);
/** Where LabHub answers as JupyterHub does and the spec says otherwise (docs/services.md). */
const SPEC_DEVIATIONS = new Set(['get /services']);
const RUNS = Number(process.env.LABHUB_FUZZ_RUNS ?? 40);

interface Operation {
  method: string;
  template: string;
  pathParams: string[];
  queryParams: string[];
  bodyKeys: string[] | null;
}

type SpecDoc = { paths: Record<string, Record<string, { parameters?: Array<{ $ref?: string; name?: string; in?: string }>; requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown>; $ref?: string } }> } }>> } & Record<string, unknown>;

function operations(): Operation[] {
  const seen = new Map<string, Operation>();
  for (const file of SPECS) {
    const doc = parse(readFileSync(file, 'utf8')) as SpecDoc;
    const resolveRef = (ref: string) => ref.replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], doc) as Record<string, unknown>;
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method) || LEFT_OUT.has(`${method} ${template}`)) continue;
        const params = (op.parameters ?? []).map((p) => (p.$ref ? resolveRef(p.$ref) as { name: string; in: string } : p as { name: string; in: string }));
        const schema = op.requestBody?.content?.['application/json']?.schema;
        const resolved = schema?.$ref ? resolveRef(schema.$ref) : schema;
        const key = `${method} ${template}`;
        seen.set(key, {
          method: method.toUpperCase(), template,
          pathParams: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
          queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
          bodyKeys: op.requestBody ? Object.keys((resolved as { properties?: object } | undefined)?.properties ?? {}) : null,
        });
      }
    }
  }
  return [...seen.values()];
}

const FIXTURE_VALUES: Record<string, string[]> = {
  name: ['fz-ann', 'fz-bo', 'fzgroup', 'nobody'],
  owner: ['fz-ann', 'fz-bo'],
  server_name: ['', 'nb', 'gone'],
  token_id: ['a1', 'a2', 'a999999', 'o1'],
  group: ['fzgroup'],
};
// Not `..` or `%2e%2e`: the client's URL parser resolves those before sending, and the request leaves the API.
const NASTY = ['', ' ', '...', 'a..b', 'a%2Fb', '%00', '😀', 'x'.repeat(300), '-1', '0', 'null', '{}', 'admin', '<script>'];

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
// An empty segment is a name only for servers (the default one); elsewhere `/users/` is the list, not a user.
const pathValue = (param: string) => fc.oneof(
  fc.constantFrom(...(FIXTURE_VALUES[param] ?? ['fz-ann'])),
  fc.constantFrom(...NASTY).map((v) => (v.includes('%') ? v : encodeURIComponent(v))),
  text.map(encodeURIComponent),
).filter((v) => (v !== '' || param === 'server_name') && v !== '.' && v !== '..');
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), text, fc.integer(), fc.constantFrom(true, null, [], {}));
const bodyOf = (keys: string[] | null) => (keys === null
  ? fc.constant(undefined)
  : fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }),
    keys.length ? fc.dictionary(fc.constantFrom(...keys), anyValue, { maxKeys: keys.length }) : fc.constant({}),
    fc.constantFrom('{"unterminated": ', 'not json', '[1, 2', '\u0000'),
  ));
const queryOf = (names: string[]) => fc.dictionary(fc.constantFrom(...names, 'offset', 'limit', 'include_stopped_servers', 'state', 'x'),
  fc.oneof(text, fc.integer().map(String), fc.constantFrom('-1', '1e999', '', 'true', 'NaN')), { maxKeys: 3 });

describe('every REST operation under random input', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_ALLOW_NAMED_SERVERS: 'true' } });
  const tokens: Record<string, string | undefined> = {};

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'fz-root', '--admin'])).status).toBe(0);
    tokens.admin = (await hub.cli(['token', 'fz-root'])).stdout.trim();
    expect((await api(hub.url, tokens.admin, 'POST', '/users', { usernames: ['fz-ann', 'fz-bo'] })).status).toBe(201);
    expect((await api(hub.url, tokens.admin, 'POST', '/groups/fzgroup', { users: ['fz-ann'] })).status).toBe(201);
    const created = await api(hub.url, tokens.admin, 'PUT', '/users/fz-ann/servers/nb', {});
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const narrow = await api(hub.url, tokens.admin, 'POST', '/users/fz-bo/tokens', { scopes: ['read:users:name!user=fz-bo', 'servers!user=fz-bo'] });
    expect(narrow.status, JSON.stringify(narrow.body)).toBe(201);
    tokens.narrow = (narrow.body as { token: string }).token;
    tokens.none = undefined;
  });
  afterAll(() => hub.cleanup());

  const ops = operations();

  it('covers both specs\' operations', () => {
    expect(ops.length).toBeGreaterThanOrEqual(50);
    expect(ops.some((o) => o.method === 'PUT' && o.template === '/users/{name}/servers/{server_name}')).toBe(true);
  });

  it('routes every operation of both specs (a missing one answers "no … endpoint at this path")', async () => {
    const unrouted: string[] = [];
    for (const op of ops) {
      const url = op.template.replace(/\{([^}]+)\}/g, (_m, p: string) => (p === 'server_name' ? 'nb' : 'nobody-here'));
      const res = await apiCall(hub.url, op.method, url, { token: tokens.admin, ...(op.method !== 'GET' && { body: {} }) });
      if (/endpoint at this path/.test(res.text)) unrouted.push(`${op.method} ${op.template}`);
    }
    expect(unrouted).toEqual([]);
  });

  for (const op of ops) {
    it(`${op.method} ${op.template}`, async () => {
      await fc.assert(fc.asyncProperty(
        fc.record({
          path: fc.tuple(...op.pathParams.map(pathValue)),
          query: queryOf(op.queryParams),
          body: bodyOf(op.bodyKeys),
          who: fc.constantFrom('admin', 'narrow', 'none'),
        }),
        async ({ path, query, body, who }) => {
          let i = 0;
          const url = op.template.replace(/\{[^}]+\}/g, () => path[i++]!) + (Object.keys(query).length ? `?${new URLSearchParams(query)}` : '');
          const res = await apiCall(hub.url, op.method, url, { token: tokens[who], ...(body !== undefined && { body }) });
          const what = `${op.method} ${url} as ${who} with ${JSON.stringify(body)?.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 300)}`;
          expect(res.status, what).toBeLessThan(500);
          if (res.status >= 400) {
            expect(res.body, what).toMatchObject({ status: res.status, message: expect.any(String) });
          } else if (res.body !== null && typeof res.body === 'object' && !SPEC_DEVIATIONS.has(`${op.method.toLowerCase()} ${op.template}`)) {
            // A 2xx answer conforms to every spec that documents the operation (6.0-only ones to 6.0.0b2's).
            for (const version of ['5.5.1', '6.0.0b2'] as const) {
              if (!hasOperation(op.method.toLowerCase(), op.template, version)) continue;
              expect(validateResponse(op.method.toLowerCase(), op.template, res.status, res.body, version), `${version}: ${what}`).toEqual([]);
            }
          }
        },
      ), { numRuns: RUNS, endOnFailure: true });
    }, 120_000);
  }
});
