/**
 * Leases' grants, as the hub's MongoDB broker writes them (`credentials.mongodb.authorization: gate`): one document
 * per account in labhub_gate.grants, `{_id: <account>, read: [db…], write: [db…]}`, deleted when the lease is revoked.
 */
import { MongoClient } from 'mongodb';
import { z } from 'zod';
import { GRANTS_COLLECTION, GRANTS_DATABASE, type Grants } from './policy.js';
import type { GrantLookup } from './gate.js';

const databaseName = z.string().regex(/^[^/\\. "$\0]{1,63}$/);
const grantSchema = z.object({ read: z.array(databaseName).max(1000), write: z.array(databaseName).max(1000) });

/** A document that is not a well-formed grant grants nothing. */
export function parseGrant(doc: unknown): Grants | null {
  const parsed = grantSchema.safeParse(doc);
  return parsed.success ? { read: new Set(parsed.data.read), write: new Set(parsed.data.write) } : null;
}

/** Reads grants over the server's admin connection; a failure to read refuses the command (the caller's error path). */
export function grantsFrom(client: MongoClient): GrantLookup {
  const grants = client.db(GRANTS_DATABASE).collection<{ _id: string }>(GRANTS_COLLECTION);
  return async (user) => parseGrant(await grants.findOne({ _id: user }));
}
