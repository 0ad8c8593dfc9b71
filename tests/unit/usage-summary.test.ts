import { describe, expect, it } from 'vitest';
import type { UsageRow } from '../../hub/db/schema.js';
import { daily, describeExcess, quotaStatus, totals } from '../../hub/usage/summary.js';
import { classOfProfile, windowExcess } from '../../hub/usage/quotas.js';
import { reservedResources } from '../../spawners/kubernetes/profiles.js';
import { podMetricsUsage } from '../../spawners/kubernetes/metrics.js';

const H = 3_600_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function run(startH: number, stopH: number | null, extra: Partial<UsageRow> = {}): UsageRow {
  return {
    id: 1, user_id: 1, server_id: 1, server_name: '', class_id: null, profile: null, spawner: 'docker',
    cpu_request: 2, mem_request: 2 ** 31, gpu_request: 0, started_at: iso(T0 + startH * H), stopped_at: stopH === null ? null : iso(T0 + stopH * H),
    cpu_seconds: null, mem_bytes: null, mem_peak: null, mem_byte_seconds: 0, sampled_at: null, quota_warned_at: null, ...extra,
  };
}

const limits = { window_hours: 24, server_hours: null, cpu_hours: null, memory_gib_hours: null, gpu_hours: null, max_servers: null };

describe('usage sums', () => {
  it('counts only the part of a run inside the window, and a running one up to now', () => {
    const t = totals([run(-2, 3), run(10, null)], T0, T0 + 12 * H, T0 + 11 * H);
    expect(t.server_hours).toBeCloseTo(3 + 1);
    expect(t.cpu_hours).toBeCloseTo(8);
    expect(t.memory_gib_hours).toBeCloseTo(8);
    expect(t.cpu_hours_used).toBeNull();
  });

  it('spreads measured CPU and memory evenly over the measured span', () => {
    const measured = run(0, 4, { cpu_seconds: 3600, mem_byte_seconds: 2 ** 30 * 3600 * 4, sampled_at: iso(T0 + 4 * H) });
    const half = totals([measured], T0 + 2 * H, T0 + 10 * H, T0 + 10 * H);
    expect(half.cpu_hours_used).toBeCloseTo(0.5);
    expect(half.memory_gib_hours_used).toBeCloseTo(2);
  });

  it('splits runs by UTC day for the plot', () => {
    const days = daily([run(-1, 1)], 2, T0 + 5 * H);
    expect(days.map((d) => d.date)).toEqual(['2026-11-30', '2026-12-01']);
    expect(days.map((d) => d.server_hours)).toEqual([1, 1]);
  });
});

describe('quota status', () => {
  it('says a reached window quota frees up when enough usage has left the window', () => {
    // 5 h used from 00:00 to 05:00; limit 4 h per 24 h: at 06:00 it is reached, and clear once 01:00 leaves (next day 01:00).
    const status = quotaStatus({ ...limits, server_hours: 4 }, [run(0, 5)], 1, T0 + 6 * H);
    expect(status.exceeded).toEqual([{ metric: 'server_hours', limit: 4, used: 5 }]);
    expect(Date.parse(status.frees_at!)).toBeCloseTo(T0 + 25 * H, -4);
  });

  it('reckons a running server as stopped now when it says when a quota frees up', () => {
    const status = quotaStatus({ ...limits, server_hours: 2 }, [run(0, null)], 1, T0 + 3 * H);
    expect(Date.parse(status.frees_at!)).toBeCloseTo(T0 + 25 * H, -4);
  });

  it('counts concurrency with the server about to start', () => {
    expect(quotaStatus({ ...limits, max_servers: 1 }, [], 1, T0).exceeded).toEqual([]);
    expect(quotaStatus({ ...limits, max_servers: 1 }, [], 2, T0).exceeded).toEqual([{ metric: 'max_servers', limit: 1, used: 2 }]);
    expect(quotaStatus({ ...limits, max_servers: 1 }, [], 2, T0).frees_at).toBeNull();
  });

  it('names a limit so that a tiny one does not read as zero', () => {
    expect(describeExcess({ metric: 'server_hours', limit: 20, used: 20.333 }, 168)).toBe('20 server-hours per 7 days (20.33 used)');
    expect(describeExcess({ metric: 'memory_gib_hours', limit: 0.0001, used: 0.00012345 }, 1)).toBe('0.0001 GiB-hours of memory per hour (0.00012 used)');
    expect(describeExcess({ metric: 'max_servers', limit: 1, used: 2 }, 24)).toBe('at most 1 server at once (2 running)');
  });

  it('is within the quota below every limit', () => {
    expect(quotaStatus({ ...limits, server_hours: 10, memory_gib_hours: 100 }, [run(0, 5)], 1, T0 + 6 * H).exceeded).toEqual([]);
  });

  it('never says a limit of 0 frees up', () => {
    const status = quotaStatus({ ...limits, gpu_hours: 0 }, [], 1, T0);
    expect(status.exceeded).toEqual([{ metric: 'gpu_hours', limit: 0, used: 0 }]);
    expect(status.frees_at).toBeNull();
  });

  it('holds a used-up GPU-hours limit against a running server only if it reserves GPUs', () => {
    const gpuRun = run(0, null, { gpu_request: 1 });
    const reports = [{ subject: { kind: 'user' as const, name: 'u' }, limits: { ...limits, gpu_hours: 1 }, status: quotaStatus({ ...limits, gpu_hours: 1 }, [gpuRun], 2, T0 + 2 * H) }];
    expect(windowExcess(reports, gpuRun)).toBe('your quota: 1 GPU-hours per day (2 used)');
    expect(windowExcess(reports, run(1, null))).toBeNull();
  });
});

describe('what a run is accounted under', () => {
  it('takes the class from a class profile only', () => {
    expect(classOfProfile('bio101/small')).toBe('bio101');
    expect(classOfProfile('gpu')).toBeNull();
    expect(classOfProfile(null)).toBeNull();
    expect(classOfProfile('/x')).toBeNull();
  });

  it('reads a pod\'s requests, falling back to limits, and counts GPUs of any vendor', () => {
    expect(reservedResources({ requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', 'nvidia.com/gpu': '1' } }))
      .toEqual({ cpu: 0.5, memBytes: 2 ** 30, gpus: 1 });
    expect(reservedResources({ limits: { memory: '512Mi', 'amd.com/gpu': '2' } })).toEqual({ memBytes: 2 ** 29, gpus: 2 });
    expect(reservedResources({})).toEqual({});
  });

  it('reads a pod\'s CPU rate and memory from its PodMetrics, summed over containers', () => {
    expect(podMetricsUsage({ containers: [{ name: 'notebook', usage: { cpu: '250m', memory: '100Mi' } }, { usage: { cpu: '1500000n', memory: '1Ki' } }] }))
      .toEqual({ cpuCores: 0.2515, memBytes: 100 * 2 ** 20 + 1024 });
    expect(podMetricsUsage({ containers: [] })).toBeUndefined();
    expect(podMetricsUsage({})).toBeUndefined();
  });
});
