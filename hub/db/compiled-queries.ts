import type { Compilable, CompiledQuery } from 'kysely';
import type { Db } from './database.js';

/** Where a value goes in a query built once; replaced by the value each time the query runs. */
class Slot {
  constructor(readonly index: number) {}
}

type Scalar = string | number | bigint | null;
/** A value, or a list of values for `in (…)`: each length of a list is its own shape, compiled once. */
export type QueryValue = Scalar | readonly Scalar[];

/** Bounds the shapes kept: lists of many lengths (pages of users) must not grow it without end. */
const MAX_SHAPES = 200;

/**
 * Queries on the request path, built and compiled once per shape and then run with new values. Building and
 * compiling a query with Kysely costs more CPU than SQLite needs to run it (docs/performance.md): on a token
 * request with a cached token, four of the five statements were built anew every time.
 *
 * `build` gets one placeholder per value (an array of them for a list) and must use each exactly once as a value;
 * that is checked when the shape is compiled, so a placeholder used as something else fails at once, not silently.
 */
export class CompiledQueries {
  private readonly shapes = new Map<string, CompiledQuery<unknown>>();

  constructor(private readonly db: Db) {}

  async rows<R>(name: string, values: readonly QueryValue[], build: (...slots: never[]) => Compilable<R>): Promise<R[]> {
    const lists = values.some((v) => Array.isArray(v));
    const key = lists ? `${name}(${values.map((v) => (Array.isArray(v) ? v.length : '')).join(',')})` : name;
    let compiled = this.shapes.get(key) as CompiledQuery<R> | undefined;
    if (!compiled) {
      compiled = compileShape(values, build);
      if (this.shapes.size >= MAX_SHAPES) this.shapes.delete(this.shapes.keys().next().value!);
      this.shapes.set(key, compiled);
    }
    const flat = lists ? values.flat() : values;
    const parameters = compiled.parameters.map((p) => (p instanceof Slot ? flat[p.index] : p));
    const { rows } = await this.db.executeQuery<R>({ ...compiled, parameters });
    return rows;
  }
}

function compileShape<R>(values: readonly QueryValue[], build: (...slots: never[]) => Compilable<R>): CompiledQuery<R> {
  let next = 0;
  const slots = values.map((v) => (Array.isArray(v) ? v.map(() => new Slot(next++)) : new Slot(next++)));
  const compiled = build(...(slots as never[])).compile();
  const seen = compiled.parameters.filter((p): p is Slot => p instanceof Slot).map((s) => s.index).sort((a, b) => a - b);
  if (seen.length !== next || seen.some((index, i) => index !== i)) {
    throw new Error(`a compiled query must bind each of its ${next} values exactly once; it bound ${seen.length}`);
  }
  return compiled;
}
