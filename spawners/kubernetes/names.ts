/**
 * Kubernetes object names and label values from user and server names, on KubeSpawner's "safe" scheme: a name that
 * is already a DNS label (lower-case letters, digits and `-`, starting with a letter), short enough and free of `--`
 * is used unchanged; any other is lower-cased, runs of other characters become `-`, it is truncated and gets
 * `---` + 8 hex of its SHA-256. Unchanged names never contain `--` and changed ones always do, so the two forms
 * cannot collide, and `--` can join a user and a server name.
 */
import { createHash } from 'node:crypto';
import { checkedUid } from '../../hub/db/user-uid.js';
import type { UserKey } from '../spawner.js';

export const MAX_SLUG = 48;
/** Keeps `<prefix>--<uid>--<server>` within a 63-character DNS label for prefixes up to 13 characters. */
const MAX_SERVER_SLUG = 32;
const DNS_LABEL = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
const HASH_SUFFIX = 11;

function hash8(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
}

function isSafe(name: string, max: number): boolean {
  return name.length <= max && DNS_LABEL.test(name) && !name.includes('--');
}

function stripped(name: string): string {
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return /^[a-z]/.test(base) ? base : `x-${base}`.replace(/-+$/, '');
}

function truncated(base: string, length: number): string {
  return base.slice(0, Math.max(1, length)).replace(/-+$/, '');
}

export function safeSlug(name: string, max = MAX_SLUG): string {
  if (name.length === 0) throw new Error('a name must not be empty');
  if (isSafe(name, max)) return name;
  return `${truncated(stripped(name), max - HASH_SUFFIX)}---${hash8(name)}`;
}

export interface ServerNames {
  pod: string;
  secret: string;
  pvc: string;
}

/**
 * Pod and Secret share a name (the Secret belongs to the pod): `<prefix>--<uid>[--<server>]`, from the account's
 * immutable uid. The home PVC is per account, shared by its servers: `<prefix>-home--<uid>`, or for an account
 * from before uids the name it was created under, `<prefix>-home-<user slug>`. A slug starts with a letter, so the
 * `-` after `<prefix>-` and `<prefix>-home-` keeps every uid name apart from every legacy one.
 */
export function serverNames(prefix: string, user: UserKey, server: string): ServerNames {
  const uid = checkedUid(user.uid);
  const pod = `${prefix}--${uid}${server ? `--${safeSlug(server, MAX_SERVER_SLUG)}` : ''}`;
  return { pod, secret: pod, pvc: homeClaimName(prefix, user) };
}

export function homeClaimName(prefix: string, user: UserKey): string {
  return user.legacyName ? `${prefix}-home-${safeSlug(user.legacyName)}` : `${prefix}-home--${checkedUid(user.uid)}`;
}

/** A label value (≤ 63 characters, alphanumeric at both ends); '' stays '' (the default server). */
export function labelValue(name: string): string {
  return name === '' ? '' : safeSlug(name, 63);
}
