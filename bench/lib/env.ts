/** A numeric benchmark setting from the environment: `fallback` when unset, an error naming it when out of range. */
export function envInt(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}: expected a number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return value;
}
