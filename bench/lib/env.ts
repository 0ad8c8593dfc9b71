/** A numeric benchmark setting from the environment, with a fallback and a lower bound. */
export function envInt(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}: expected a number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return value;
}
