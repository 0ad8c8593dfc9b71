import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, clientResponseHeadersOf, customHeaderProblem, customHeaders, rawResponseHead, upstreamRequestHeaders } from '../../proxy/headers.js';

const forwarded = { remoteAddress: '10.0.0.7', proto: 'http', defaultPort: '80' };

describe('upstream request headers', () => {
  it('drops hop-by-hop headers, keeps the rest with their spelling, and adds X-Forwarded-*', () => {
    const { headers, hasBody } = upstreamRequestHeaders(
      ['Host', 'hub.example.org:8443', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Cookie', 'a=1', 'Cookie', 'b=2'],
      false,
      forwarded,
    );
    expect(hasBody).toBe(false);
    expect(headers).toEqual([
      'Host', 'hub.example.org:8443', 'Cookie', 'a=1', 'Cookie', 'b=2',
      'x-forwarded-for', '10.0.0.7', 'x-forwarded-port', '8443', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'hub.example.org:8443',
    ]);
  });

  it('appends to X-Forwarded-* set by a proxy in front and keeps its X-Forwarded-Host', () => {
    const { headers } = upstreamRequestHeaders(
      ['host', 'inner', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'outer.example.org'],
      false,
      forwarded,
    );
    expect(headers).toEqual([
      'host', 'inner', 'X-Forwarded-Host', 'outer.example.org',
      'x-forwarded-for', '1.2.3.4,10.0.0.7', 'x-forwarded-port', '80', 'x-forwarded-proto', 'https,http',
    ]);
  });

  it('keeps Connection and Upgrade on websocket upgrades; leaves body framing and Expect to the upstream client', () => {
    expect(upstreamRequestHeaders(['Connection', 'Upgrade', 'Upgrade', 'websocket'], true, undefined).headers).toEqual([
      'Connection', 'Upgrade', 'Upgrade', 'websocket',
    ]);
    const chunked = upstreamRequestHeaders(['Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Expect', '100-continue', 'Accept', '*/*'], false, undefined);
    expect(chunked).toEqual({ headers: ['Accept', '*/*'], hasBody: true });
    expect(upstreamRequestHeaders(['Content-Length', '0'], false, undefined).hasBody).toBe(false);
    expect(upstreamRequestHeaders(['Content-Length', '12'], false, undefined).hasBody).toBe(true);
  });

  it('reads the port of an IPv6 Host header', () => {
    const { headers } = upstreamRequestHeaders(['Host', '[::1]:9000'], false, forwarded);
    expect(headers).toContain('9000');
    expect(upstreamRequestHeaders(['Host', '[::1]'], false, forwarded).headers).toContain('80');
  });
});

describe('custom headers', () => {
  it('replace what the client sent and what the proxy would add under the same names, and come last', () => {
    const custom = customHeaders([['X-Hub', 'one'], ['X-Forwarded-Proto', 'https'], ['x-hub', 'two'], ['X-Empty', '']]);
    const { headers } = upstreamRequestHeaders(
      ['Host', 'hub.example.org', 'X-HUB', 'forged', 'X-Forwarded-Proto', 'gopher', 'Accept', '*/*'],
      false,
      forwarded,
      custom,
    );
    expect(headers).toEqual([
      'Host', 'hub.example.org', 'Accept', '*/*',
      'x-forwarded-for', '10.0.0.7', 'x-forwarded-port', '80', 'x-forwarded-host', 'hub.example.org',
      'X-Forwarded-Proto', 'https', 'x-hub', 'two', 'X-Empty', '',
    ]);
  });

  it.each([
    ['X Hub', 'v', 'not a valid header name'],
    ['', 'v', 'not a valid header name'],
    ['X-Hub', 'a\r\nX-Evil: 1', 'no header can carry'],
    ['X-Hub', 'a\u0000b', 'no header can carry'],
    ['X-Hub', '\u20ac', 'no header can carry'],
    ['Content-Length', '5', 'set by the proxy'],
    ['Connection', 'close', 'set by the proxy'],
  ])('refuses %j: %j', (name, value, problem) => {
    expect(customHeaderProblem(name, value)).toContain(problem);
    expect(() => customHeaders([[name, value]])).toThrow(problem);
  });

  it('accepts tabs and Latin-1 in values', () => {
    expect(customHeaderProblem('X-Hub', 'a\tb caf\u00e9')).toBeUndefined();
  });
});

describe('client response headers', () => {
  it('drops framing and connection headers, keeps repeated Set-Cookie', () => {
    expect(
      clientResponseHeaders(['Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked', 'Connection', 'close', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']),
    ).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });

  it('does the same for parsed headers, one entry per repeated value', () => {
    expect(
      clientResponseHeadersOf({ 'content-type': 'text/plain', 'transfer-encoding': 'chunked', 'keep-alive': 'timeout=5', 'set-cookie': ['a=1', 'b=2'] }),
    ).toEqual(['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
  });

  it('writes a raw response head', () => {
    expect(rawResponseHead(101, 'Switching Protocols', ['Upgrade', 'websocket'])).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
  });
});
