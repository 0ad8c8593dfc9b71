import type { Store } from '../db/index.js';
import type { Logger } from '../log.js';

/**
 * JupyterHub's rule: membership of the `admin` role is what makes a user an admin. Each start, users the config
 * lists in the role get the admin flag; users it listed last time and no longer does lose it, and their browser
 * sessions with it. Admins made another way (the setup link, the API, `admin_users` at login) are left alone.
 */
export async function syncAdminFlags(store: Store, before: readonly number[], after: readonly number[], log: Logger): Promise<void> {
  const listed = new Set(after);
  for (const id of listed) {
    const user = await store.users.byId(id);
    if (user && !user.admin) {
      await store.users.update(id, { admin: true });
      log.info({ user: user.name }, 'admin: listed in the admin role of the config');
    }
  }
  for (const id of before) {
    if (listed.has(id)) continue;
    const user = await store.users.byId(id);
    if (!user?.admin) continue;
    await store.users.update(id, { admin: false });
    await store.users.rotateCookieId(id);
    log.warn({ user: user.name }, 'admin removed: no longer listed in the admin role of the config');
  }
}
