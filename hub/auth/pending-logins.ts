import { randomBytes } from 'node:crypto';
import type { PendingLogin } from '../../authenticators/authenticator.js';

interface Entry {
  pending: PendingLogin;
  next: string;
  expires: number;
}

/**
 * Logins waiting for the identity provider's callback. The browser holds only a random id in a cookie; PKCE
 * verifier, state and nonce stay in the hub. An id works once: a replayed or forged callback finds nothing.
 */
export class PendingLogins {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly ttlMs = 10 * 60_000, private readonly maxEntries = 10_000) {}

  add(pending: PendingLogin, next: string): string {
    const now = Date.now();
    for (const [id, e] of this.entries) if (e.expires < now) this.entries.delete(id);
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const id = randomBytes(24).toString('base64url');
    this.entries.set(id, { pending, next, expires: now + this.ttlMs });
    return id;
  }

  take(id: string | undefined): { pending: PendingLogin; next: string } | undefined {
    if (!id) return undefined;
    const entry = this.entries.get(id);
    this.entries.delete(id);
    return entry && entry.expires >= Date.now() ? entry : undefined;
  }
}
