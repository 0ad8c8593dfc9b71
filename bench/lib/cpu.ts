/**
 * CPU accounting from /proc (Linux): how many cores the hub under test, this benchmark process, and everything
 * else on the machine used during a measurement. On a shared machine the last figure says how noisy a run was.
 */
import { readFileSync } from 'node:fs';

const CLK_TCK = 100; // USER_HZ on Linux

function machineBusyJiffies(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!; // cpu  user nice system idle iowait irq softirq steal …
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return user + nice + system + irq + softirq + steal;
  } catch {
    return NaN;
  }
}

function processJiffies(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    return Number(fields[11]) + Number(fields[12]); // utime (#14) + stime (#15)
  } catch {
    return 0; // exited
  }
}

export interface CpuUse {
  /** Cores the hub's own process used on average. */
  hub: number;
  /** Cores the proxy the hub started used. */
  proxy: number;
  /** Cores this benchmark process (the load generator) used. */
  bench: number;
  /** Cores everything else on the machine used: background load. */
  other: number;
}

/** Starts a measurement of the hub process `hubPid` and its proxy processes; call the returned function at the end. */
export function cpuMeter(hubPid: number | undefined, proxyPids: number[]): () => CpuUse {
  const t0 = performance.now();
  const busy0 = machineBusyJiffies();
  const sum = (pids: number[]) => pids.reduce((a, p) => a + processJiffies(p), 0);
  const hub0 = hubPid ? processJiffies(hubPid) : 0;
  const proxy0 = sum(proxyPids);
  const self0 = process.cpuUsage();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const busy = (machineBusyJiffies() - busy0) / CLK_TCK / seconds;
    const hub = ((hubPid ? processJiffies(hubPid) : 0) - hub0) / CLK_TCK / seconds;
    const proxy = (sum(proxyPids) - proxy0) / CLK_TCK / seconds;
    const selfUse = process.cpuUsage(self0);
    const bench = (selfUse.user + selfUse.system) / 1e6 / seconds;
    const round = (x: number) => Math.round(x * 100) / 100;
    return { hub: round(hub), proxy: round(proxy), bench: round(bench), other: round(Math.max(0, busy - hub - proxy - bench)) };
  };
}
