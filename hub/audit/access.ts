import type { Requester } from '../auth/identity.js';
import { filterForList } from '../auth/scopes.js';
import type { Store } from '../db/index.js';
import { HttpError } from '../errors.js';

/** What part of a scope's records a requester may list: everything, or those about some users and groups. */
export type ListReach = { all: true } | { all: false; users: string[]; groups: string[] };
export type AuditReach = ListReach;

/**
 * `read:audit` unfiltered (admins) reads everything. Filtered by group (a teacher's `read:audit!group=<class>`), it
 * reads records about that class and about its current members, as actor or target; filtered by user, that user's.
 */
export function auditReach(store: Store, requester: Requester): Promise<AuditReach> {
  return listReach(store, requester, 'read:audit');
}

/** A list scope (`read:audit`, `read:usage`) as the users and groups it covers; 403 without it. */
export async function listReach(store: Store, requester: Requester, scope: string): Promise<ListReach> {
  const access = filterForList(requester.scopes, scope);
  if (access.access === 'denied') {
    throw new HttpError(403, access.reason === 'no-scope' ? `${scope} is required` : `${scope} can only be filtered by user or group`);
  }
  if (access.access === 'all') return { all: true };
  const groups = [...access.filters.group];
  const users = new Set(access.filters.user);
  const rows = await Promise.all(groups.map((g) => store.groups.byName(g)));
  const ids = rows.flatMap((g) => (g ? [g.id] : []));
  for (const names of (await store.groups.membersOf(ids)).values()) for (const n of names) users.add(n);
  return { all: false, users: [...users], groups };
}
