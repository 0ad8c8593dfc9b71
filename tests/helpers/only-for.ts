import { describe, it } from 'vitest';

/**
 * A case that applies to one state DB dialect only is registered for that dialect alone, so a run never reports it
 * as skipped (under CI a skip would hide a missing service).
 */
export const itIf = (applies: boolean): typeof it => (applies ? it : ((() => undefined) as unknown as typeof it));
export const describeIf = (applies: boolean): typeof describe => (applies ? describe : ((() => undefined) as unknown as typeof describe));
