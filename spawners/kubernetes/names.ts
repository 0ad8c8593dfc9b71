/**
 * Kubernetes object names and label values from user and server names, on KubeSpawner's "safe" scheme: a name that
 * is already a DNS label (lower-case letters, digits and `-`, starting with a letter), short enough and free of `--`
 * is used unchanged; any other is lower-cased, runs of other characters become `-`, it is truncated and gets
 * `---` + 8 hex of its SHA-256. Unchanged names never contain `--` and changed ones always do, so the two forms
 * cannot collide, and `--` can join a user and a server name.
 */
import { createHash } from 'node:crypto';

export const MAX_SLUG = 48;
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

/** `<user>` for the default server, `<user>--<server>` for a named one; one hash over both when too long. */
export function userServerSlug(user: string, server: string, max = MAX_SLUG): string {
  if (!server) return safeSlug(user, max);
  const joined = `${safeSlug(user, max)}--${safeSlug(server, max)}`;
  if (joined.length <= max) return joined;
  const half = Math.floor((max - HASH_SUFFIX - 2) / 2);
  return `${truncated(stripped(user), half)}--${truncated(stripped(server), half)}---${hash8(`${user}\u0000${server}`)}`;
}

export interface ServerNames {
  pod: string;
  secret: string;
  pvc: string;
}

/** Pod and Secret share a name (the Secret belongs to the pod); the home PVC is per user, shared by their servers. */
export function serverNames(prefix: string, user: string, server: string): ServerNames {
  const pod = `${prefix}-${userServerSlug(user, server)}`;
  return { pod, secret: pod, pvc: `${prefix}-home-${safeSlug(user)}` };
}

/** A label value (≤ 63 characters, alphanumeric at both ends); '' stays '' (the default server). */
export function labelValue(name: string): string {
  return name === '' ? '' : safeSlug(name, 63);
}
