import type { Requester } from '../auth/identity.js';
import { filterForList } from '../auth/scopes.js';
import type { Store } from '../db/index.js';
import { HttpError } from '../errors.js';

/** What part of the audit log a requester may read: everything, or records about some users and groups. */
export type AuditReach = { all: true } | { all: false; users: string[]; groups: string[] };

/**
 * `read:audit` unfiltered (admins) reads everything. Filtered by group (a teacher's `read:audit!group=<class>`), it
 * reads records about that class and about its current members, as actor or target; filtered by user, that user's.
 */
export async function auditReach(store: Store, requester: Requester): Promise<AuditReach> {
  const access = filterForList(requester.scopes, 'read:audit');
  if (access.access === 'denied') {
    throw new HttpError(403, access.reason === 'no-scope' ? 'read:audit is required' : 'read:audit can only be filtered by user or group');
  }
  if (access.access === 'all') return { all: true };
  const groups = [...access.filters.group];
  const users = new Set(access.filters.user);
  const rows = await Promise.all(groups.map((g) => store.groups.byName(g)));
  const ids = rows.flatMap((g) => (g ? [g.id] : []));
  for (const names of (await store.groups.membersOf(ids)).values()) for (const n of names) users.add(n);
  return { all: false, users: [...users], groups };
}
