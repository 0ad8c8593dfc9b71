/** Machine description and the comparison table the benchmarks print (Markdown, ready for the README). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpu: string;
  memGiB: number;
  os: string;
  node: string;
  python: string;
  loadavgStart: number[];
  loadavgEnd?: number[];
}

export function machineInfo(): MachineInfo {
  let os: string = process.platform;
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // not Linux
  }
  let python = 'unknown';
  try {
    python = execFileSync('/usr/bin/python3', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // absent
  }
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    os,
    node: process.version,
    python,
    loadavgStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Which way a ratio is taken, so that > 1 always means LabHub is better. */
export type Better = 'higher' | 'lower';

export interface Row {
  metric: string;
  labhub: number | null;
  jupyterhub: number | null;
  better: Better;
  /** Digits after the point when printing. */
  digits?: number;
}

export function ratioOf(row: Row): number | null {
  const { labhub: l, jupyterhub: j } = row;
  if (l === null || j === null || !Number.isFinite(l) || !Number.isFinite(j) || l <= 0 || j <= 0) return null;
  return row.better === 'higher' ? l / j : j / l;
}

function fmt(value: number | null, digits = 1): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function table(rows: Row[]): string {
  const header = ['metric', 'LabHub', 'JupyterHub 3.0', 'ratio (> 1: LabHub better)', 'ratio is'];
  const body = rows.map((r) => {
    const ratio = ratioOf(r);
    return [
      r.metric, fmt(r.labhub, r.digits), fmt(r.jupyterhub, r.digits), ratio === null ? 'n/a' : `${fmt(ratio, 2)}×`,
      r.better === 'higher' ? 'LabHub ÷ JupyterHub (higher is better)' : 'JupyterHub ÷ LabHub (lower is better)',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 || i === 4 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), sep, ...body.map(line)].join('\n');
}
