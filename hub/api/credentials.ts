import { Router } from 'express';
import type { HubContext } from '../context.js';
import type { LeaseRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { usernameFrom } from './validate.js';

/** What the API shows of a lease: everything but secrets (the hub has none to show: it never stores the password). */
export function leaseModel(lease: LeaseRow) {
  return {
    id: lease.id,
    user: lease.user_name,
    server_name: lease.server_name,
    service: lease.service,
    account: lease.account,
    status: lease.status,
    issued_at: lease.issued_at,
    expires_at: lease.expires_at,
    revoke_failures: lease.revoke_failures,
    last_error: lease.last_error,
  };
}

/**
 * LabHub extension: credential leases (docs/credentials.md). Listing and revoking need admin:users on the user;
 * the overview of every lease needs it unfiltered. A revocation the service refuses answers 502 and stays
 * recorded on the lease, which the sweeper retries.
 */
export function credentialsRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz, credentials } = ctx;

  /** The user's unrevoked leases; a deleted user whose leases are still being revoked still has them listed. */
  async function leasesOf(name: string): Promise<LeaseRow[]> {
    const leases = await store.leases.unrevokedOfUser(name);
    if (!leases.length && !(await store.users.byName(name))) throw new HttpError(404, `No such user: ${name.slice(0, 64)}`);
    return leases;
  }

  function revokedOr502(failed: LeaseRow[]): void {
    if (failed.length) {
      throw new HttpError(502, `Could not revoke ${failed.length} lease(s) (${failed.map((l) => l.service).join(', ')}); the hub keeps retrying`);
    }
  }

  router.get('/credentials', async (_req, res) => {
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users']);
    if (requester.scopes.get('admin:users') !== 'all') throw new HttpError(403, 'Listing every lease requires unfiltered admin:users');
    res.json((await store.leases.unrevoked()).map(leaseModel));
  });

  router.get('/users/:name/credentials', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    res.json((await leasesOf(name)).map(leaseModel));
  });

  router.delete('/users/:name/credentials', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    revokedOr502(await credentials.revokeAll(await leasesOf(name)));
    ctx.log.info({ user: name, by: requester.name }, 'credentials revoked by request');
    res.status(204).end();
  });

  router.delete('/users/:name/credentials/:id', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    const id = req.params.id!;
    if (!/^\d{1,15}$/.test(id)) throw new HttpError(400, 'A lease id is a positive integer');
    const lease = await store.leases.byId(Number(id));
    if (!lease || lease.user_name !== name) throw new HttpError(404, `${name} has no lease ${id}`);
    if (lease.status !== 'revoked') revokedOr502(await credentials.revokeAll([lease]));
    ctx.log.info({ user: name, lease: lease.id, by: requester.name }, 'credentials revoked by request');
    res.status(204).end();
  });

  return router;
}
