import { describe, expect, it } from 'vitest';
import { FETCH_BLOCKED_PORTS, blockedPortProblem, blockedUrlPortProblem } from '../../hub/fetch-ports.js';

/** What Node's fetch does with a port: `bad port` refuses before connecting; anything else is a connection attempt. */
async function fetchRefusal(port: number): Promise<string> {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    return 'answered';
  } catch (err) {
    return String((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
  }
}

describe('the ports fetch blocks', () => {
  it('are the ones Node\'s fetch refuses, and ports beside them are not', async () => {
    for (const port of FETCH_BLOCKED_PORTS) expect(await fetchRefusal(port), `port ${port}`).toBe('bad port');
    for (const port of [8000, 8001, 8081, 10079, 10081]) expect(await fetchRefusal(port), `port ${port}`).not.toBe('bad port');
  });

  it('are named in the problem, with the scheme\'s default port when a URL names none', () => {
    expect(blockedPortProblem(10080)).toMatch(/^port 10080 is one that browsers and Node's fetch refuse/);
    expect(blockedPortProblem(8000)).toBeUndefined();
    expect(blockedUrlPortProblem('http://hub.example.org:6000/x')).toMatch(/port 6000/);
    expect(blockedUrlPortProblem('https://hub.example.org/')).toBeUndefined();
    expect(blockedUrlPortProblem('ldap://hub.example.org:389')).toBeUndefined();
    expect(blockedUrlPortProblem('not a url')).toBeUndefined();
  });
});
