import type { Request } from 'express';
import { nowIso } from '../db/database.js';
import type { Store } from '../db/index.js';
import type { Requester } from '../auth/identity.js';
import type { UserRow } from '../db/schema.js';
import type { AuditActor, AuditEvent, AuditTarget } from './events.js';
import { scrub, scrubString } from './scrub.js';

/**
 * The one way anything is written to the audit log. Pass the `tx` store of the transaction that makes the change,
 * so the change and its record commit together: a hub killed mid-request leaves both or neither.
 */
export async function recordAudit(store: Store, event: AuditEvent): Promise<void> {
  const actor = event.actor;
  // Names typed by someone who has not signed in are free text (a password typed in the username field).
  const free = event.action === 'login.failure';
  const target = event.target;
  await store.audit.insert({
    time: nowIso(),
    action: event.action,
    actorKind: actor.kind,
    actorName: actor.kind === 'system' ? null : actor.name,
    actorUid: actor.kind === 'user' ? actor.uid : null,
    targetKind: target?.kind ?? null,
    targetName: target ? (free ? scrubString(target.name.slice(0, 64)) : target.name) : null,
    targetUid: target?.uid ?? null,
    source: event.source ? event.source.slice(0, 64) : null,
    details: JSON.stringify(scrub(event.details)),
  });
}

export const SYSTEM: AuditActor = Object.freeze({ kind: 'system' });

/** Who asked for an action and from where, handed to code that records it (server starts, link making). */
export interface AuditBy {
  actor: AuditActor;
  source: string | null;
}

/** The hub itself (culling, shutdown, the CLI): no request behind it. */
export const BY_HUB: AuditBy = Object.freeze({ actor: SYSTEM, source: null });

export function auditBy(requester: Requester | null, req: Request): AuditBy {
  return { actor: actorOf(requester), source: sourceOf(req) };
}

/** Who made a request, as an audit actor. */
export function actorOf(requester: Requester | null): AuditActor {
  if (!requester) return SYSTEM;
  if (requester.kind === 'user' && requester.user) return { kind: 'user', name: requester.user.name, uid: requester.user.uid };
  return { kind: 'service', name: requester.name };
}

export function userActor(user: UserRow): AuditActor {
  return { kind: 'user', name: user.name, uid: user.uid };
}

export function userTarget(user: UserRow): AuditTarget {
  return { kind: 'user', name: user.name, uid: user.uid };
}

/** The client address as the hub's trusted-proxy rules resolved it. */
export function sourceOf(req: Request): string | null {
  return req.ip ?? null;
}
