import { describe, expect, it } from 'vitest';
import { Route, RouteTable, normalizeRoutePath, parseTarget, type RouteMatch } from '../../proxy/routes.js';

function table(...paths: string[]): RouteTable {
  const routes = new RouteTable();
  for (const path of paths) routes.add(path, { target: `http://127.0.0.1:9000${path === '/' ? '' : path}` });
  return routes;
}

/** The matched route's path, or the reason there is none. */
function routed(routes: RouteTable, url: string): string {
  const found = routes.match(url);
  return typeof found === 'string' ? found : found.route.path;
}

describe('normalizeRoutePath', () => {
  it('gives CHP key form: leading slash, no trailing slash except the root', () => {
    expect(normalizeRoutePath('user/alice/')).toBe('/user/alice');
    expect(normalizeRoutePath('/user/alice')).toBe('/user/alice');
    expect(normalizeRoutePath('/')).toBe('/');
    expect(normalizeRoutePath('')).toBe('/');
  });

  it('collapses repeated slashes so one prefix has one key', () => {
    expect(normalizeRoutePath('//user///alice//')).toBe('/user/alice');
  });
});

describe('parseTarget', () => {
  it('accepts absolute http and https URLs only', () => {
    expect(parseTarget('http://10.0.0.5:8888')?.port).toBe('8888');
    expect(parseTarget('https://example.org/base/')?.pathname).toBe('/base/');
    expect(parseTarget('ftp://example.org')).toBeUndefined();
    expect(parseTarget('/relative')).toBeUndefined();
    expect(parseTarget('not a url')).toBeUndefined();
  });
});

describe('RouteTable add/get/remove', () => {
  it('stores the data, normalizes the key and sets last_activity', () => {
    const routes = new RouteTable();
    const before = Date.now();
    routes.add('/user/alice/', { target: 'http://127.0.0.1:1', jupyterhub: true, user: 'alice' });
    const route = routes.get('/user/alice')!;
    expect(route.path).toBe('/user/alice');
    expect(route.data).toEqual({ target: 'http://127.0.0.1:1', jupyterhub: true, user: 'alice' });
    expect(route.lastActivity).toBeInstanceOf(Date);
    expect(route.lastActivityMs).toBeGreaterThanOrEqual(before);
    expect(routes.get('/user/alice/')).toBe(route);
    expect(routes.size).toBe(1);
  });

  it('replaces a route on add and ignores a client-sent last_activity', () => {
    const routes = table('/user/alice');
    routes.add('/user/alice', { target: 'http://127.0.0.1:2', last_activity: '2000-01-01T00:00:00.000Z' });
    const route = routes.get('/user/alice')!;
    expect(route.data).toEqual({ target: 'http://127.0.0.1:2' });
    expect(route.lastActivity.getFullYear()).toBeGreaterThan(2000);
    expect(routes.size).toBe(1);
  });

  it('refuses targets that are not absolute http(s) URLs', () => {
    expect(() => new RouteTable().add('/x', { target: 'nope' })).toThrow(TypeError);
  });

  it('serializes like CHP: data plus ISO last_activity', () => {
    const route = table('/user/alice').get('/user/alice')!;
    const json = JSON.parse(route.toJSONString()) as Record<string, unknown>;
    expect(json).toEqual(JSON.parse(JSON.stringify(route)));
    expect(json.target).toBe('http://127.0.0.1:9000/user/alice');
    expect(json.last_activity).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('touch records activity without replacing the route', () => {
    const route = new Route('/a', new URL('http://127.0.0.1:1'), { target: 'http://127.0.0.1:1' });
    route.lastActivityMs = 0;
    route.touch();
    expect(route.lastActivityMs).toBeGreaterThan(0);
  });

  it('removes exactly one route and reports whether it existed', () => {
    const routes = table('/user/alice', '/user/alice/lab2', '/user/bob');
    expect(routes.remove('/user/alice/')).toBe(true);
    expect(routes.remove('/user/alice')).toBe(false);
    expect(routes.get('/user/alice')).toBeUndefined();
    expect(routed(routes, '/user/alice/lab2/x')).toBe('/user/alice/lab2');
    expect(routed(routes, '/user/alice/x')).toBe('no-route');
    expect(routed(routes, '/user/bob/x')).toBe('/user/bob');
    expect(routes.remove('/user/nobody')).toBe(false);
  });

  it('prunes branches left empty, and removing a leaf keeps the root route', () => {
    const routes = table('/', '/user/alice');
    routes.remove('/user/alice');
    expect(routed(routes, '/user/alice/x')).toBe('/');
    routes.add('/user/alice', { target: 'http://127.0.0.1:1' });
    expect(routed(routes, '/user/alice/x')).toBe('/user/alice');
  });

  it('lists every route', () => {
    const routes = table('/', '/user/alice', '/user/bob');
    expect([...routes.values()].map((r) => r.path)).toEqual(['/', '/user/alice', '/user/bob']);
  });
});

describe('RouteTable.match: longest whole-segment prefix', () => {
  const routes = table('/', '/user/alice', '/user/alice/lab2', '/user/a', '/hub/api');

  it('picks the longest prefix', () => {
    expect(routed(routes, '/user/alice/lab2/api/kernels')).toBe('/user/alice/lab2');
    expect(routed(routes, '/user/alice/lab/tree')).toBe('/user/alice');
    expect(routed(routes, '/user/alice')).toBe('/user/alice');
    expect(routed(routes, '/user/alice/')).toBe('/user/alice');
    expect(routed(routes, '/hub/api/users')).toBe('/hub/api');
  });

  it('matches whole segments only', () => {
    expect(routed(routes, '/user/ab/x')).toBe('/');
    expect(routed(routes, '/user/alicebob')).toBe('/');
    expect(routed(routes, '/user/a/x')).toBe('/user/a');
  });

  it('falls back to the root route, and reports no-route without one', () => {
    expect(routed(routes, '/')).toBe('/');
    expect(routed(routes, '/anything/else')).toBe('/');
    expect(routed(table('/user/alice'), '/hub/')).toBe('no-route');
    expect(routed(new RouteTable(), '/')).toBe('no-route');
  });

  it('ignores the query string and a fragment', () => {
    expect(routed(routes, '/user/alice?next=/user/bob')).toBe('/user/alice');
    expect(routed(routes, '/user/alice/x?a=../b')).toBe('/user/alice');
    expect(routed(routes, '/user/alice#/user/bob')).toBe('/user/alice');
  });

  it('skips empty segments', () => {
    expect(routed(routes, '//user//alice///x')).toBe('/user/alice');
  });

  it('decodes each segment once, so %40 and @ are the same route', () => {
    const encoded = table('/user/foo@bar', '/user/café');
    expect(routed(encoded, '/user/foo%40bar/x')).toBe('/user/foo@bar');
    expect(routed(encoded, '/user/foo@bar/x')).toBe('/user/foo@bar');
    expect(routed(encoded, '/user/caf%C3%A9/')).toBe('/user/café');
    expect(routed(encoded, '/user/foo%2540bar/x')).toBe('no-route');
  });

  it('reports where the matched prefix ends in the raw URL (for --no-include-prefix)', () => {
    const encoded = table('/user/foo@bar');
    const found = encoded.match('/user/foo%40bar/api?x=1') as RouteMatch;
    expect(found.prefixEnd).toBe('/user/foo%40bar'.length);
    expect((routes.match('/anything') as RouteMatch).prefixEnd).toBe(0);
  });

  it('costs the same with 10,000 routes', () => {
    const many = new RouteTable();
    for (let i = 0; i < 10_000; i++) many.add(`/user/user${i}`, { target: 'http://127.0.0.1:1' });
    expect(routed(many, '/user/user9999/api/kernels/abc/channels')).toBe('/user/user9999');
    expect(routed(many, '/user/user10000/api')).toBe('no-route');
  });
});

describe('RouteTable.match: traversal and smuggling are refused (400), never routed elsewhere', () => {
  const routes = table('/', '/user/alice', '/user/bob');

  it.each([
    '/user/alice/../bob/x',
    '/user/alice/./x',
    '/user/alice/x/../../bob/x',
    '/user/alice/%2e%2e/bob/x',
    '/user/alice/%2E%2E/bob/x',
    '/user/alice/.%2e/bob/x',
    '/user/alice/..%2fbob/x',
    '/user/alice/..%2Fbob/x',
    '/user/alice/x%2f..%2f..%2fbob',
    '/user/alice/..%5cbob/x',
    '/user/alice\\..\\bob/x',
    '/user/alice/..',
    '/..',
  ])('%s', (url) => {
    expect(routes.match(url)).toBe('bad-path');
  });

  it('refuses encoded slashes and backslashes where they take part in matching', () => {
    expect(routes.match('/user%2Falice/x')).toBe('bad-path');
    expect(routes.match('/user/alice%2Fbob')).toBe('bad-path');
    expect(routes.match('/user%5Calice/x')).toBe('bad-path');
  });

  it('refuses raw backslashes anywhere in the path, but not in the query', () => {
    const rootOnly = table('/');
    expect(rootOnly.match('/\\evil.example/x')).toBe('bad-path');
    expect(routes.match('/user\\alice/x')).toBe('bad-path');
    expect(routes.match('/user/alice/x\\y')).toBe('bad-path');
    expect(routed(routes, '/user/alice/search?q=a\\b')).toBe('/user/alice');
  });

  it('forwards encoded slashes inside a matched server untouched', () => {
    expect(routed(routes, '/user/alice/api/contents/a%2Fb')).toBe('/user/alice');
  });

  it('allows dots that are not whole segments', () => {
    expect(routed(routes, '/user/alice/static/main.js')).toBe('/user/alice');
    expect(routed(routes, '/user/alice/.ipynb_checkpoints/x')).toBe('/user/alice');
    expect(routed(routes, '/user/alice/...')).toBe('/user/alice');
  });

  it('refuses malformed percent-encoding and URLs that are not origin-form', () => {
    expect(routes.match('/user/alice/%E0%A4%A')).toBe('bad-path');
    expect(routes.match('/user/%zz')).toBe('bad-path');
    expect(routes.match('http://evil.example/user/bob')).toBe('bad-path');
    expect(routes.match('*')).toBe('bad-path');
  });
});
