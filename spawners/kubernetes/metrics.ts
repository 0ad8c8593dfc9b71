import { parseQuantity } from '../../hub/classes/bounds.js';
import type { ServerStats } from '../spawner.js';

/** The parts of a metrics.k8s.io PodMetrics object LabHub reads. */
export interface PodMetrics {
  containers?: Array<{ name?: string; usage?: { cpu?: string; memory?: string } }>;
}

/**
 * A pod's current use from its PodMetrics (what metrics-server reports): the CPU rate in cores, summed over its
 * containers, and their working-set memory. Undefined when it names no usage.
 */
export function podMetricsUsage(metrics: PodMetrics): ServerStats | undefined {
  let cores: number | undefined;
  let memory: number | undefined;
  for (const c of metrics.containers ?? []) {
    const cpu = parseQuantity(c.usage?.cpu);
    const mem = parseQuantity(c.usage?.memory);
    if (cpu !== undefined) cores = (cores ?? 0) + cpu;
    if (mem !== undefined) memory = (memory ?? 0) + mem;
  }
  if (cores === undefined && memory === undefined) return undefined;
  return { ...(cores !== undefined && { cpuCores: cores }), ...(memory !== undefined && { memBytes: Math.round(memory) }) };
}
