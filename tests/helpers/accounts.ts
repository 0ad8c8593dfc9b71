import { newUserUid } from '../../hub/db/user-uid.js';

const uids = new Map<string, string>();

/** A spawner test's account: one uid per name for the whole run, as the hub's users table gives, from the product's generator. */
export function accountKey(name: string): { uid: string } {
  if (!uids.has(name)) uids.set(name, newUserUid());
  return { uid: uids.get(name)! };
}
