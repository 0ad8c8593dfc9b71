import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import type { LdapConfig } from '../hub/config/auth-schema.js';
import { passwordRejection } from '../hub/auth/passwords.js';
import { normalizeUsername, validateUsername } from '../hub/auth/usernames.js';
import type { Logger } from '../hub/log.js';
import type { AuthenticatedUser, Authenticator, LoginAttempt } from './authenticator.js';
import { escapeDnValue, fillFilter } from './ldap-escape.js';

function firstValue(entry: Entry, attribute: string): string | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const value = key === undefined ? undefined : entry[key];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : Buffer.isBuffer(first) ? first.toString('utf8') : undefined;
}

/**
 * LDAP and Active Directory with ldapts: a direct bind by DN template, or search-then-bind with a service account;
 * groups by a group search. Every value from the login form is escaped (RFC 4514 in DNs, RFC 4515 in filters),
 * and a search must find exactly one entry.
 */
export class LdapAuthenticator implements Authenticator {
  readonly kind = 'ldap';
  readonly loginStyle = 'form' as const;
  private readonly tls: ConnectionOptions;

  constructor(private readonly config: LdapConfig, private readonly log: Logger) {
    this.tls = {
      rejectUnauthorized: config.tls_reject_unauthorized,
      ...(config.ca_file && { ca: readFileSync(config.ca_file, 'utf8') }),
    };
  }

  private async connect(): Promise<Client> {
    const timeout = this.config.timeout * 1000;
    // ldapts speaks TLS from the first byte whenever tlsOptions is given, so only ldaps:// gets them here.
    const ldaps = this.config.url.startsWith('ldaps:');
    const client = new Client({ url: this.config.url, timeout, connectTimeout: timeout, ...(ldaps && { tlsOptions: this.tls }) });
    // The socket is already connected, so the certificate is checked against `host`, not Node's default "localhost".
    if (this.config.start_tls) await client.startTLS({ ...this.tls, host: new URL(this.config.url).hostname });
    return client;
  }

  async authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null> {
    // An LDAP bind with a DN and an empty password is an anonymous bind that servers may report as success.
    if (passwordRejection(attempt.password) !== null) return null;
    const login = normalizeUsername(attempt.username);
    if (validateUsername(login) !== null) return null;
    let client: Client | undefined;
    try {
      client = await this.connect();
      const userDn = await this.bindAsUser(client, login, attempt.password);
      if (!userDn) return null;
      const { search } = this.config;
      // Reads run as the service account when there is one: group ACLs are then the same for every user.
      if (search) await client.bind(search.bind_dn, search.bind_password);
      const name = await this.hubName(client, userDn, login);
      if (name === null) return null;
      return { name, groups: await this.groupsOf(client, userDn, login), authState: { ldap_dn: userDn } };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'LDAP error during login');
      return null;
    } finally {
      await client?.unbind().catch(() => undefined);
    }
  }

  /** The user's DN once the password is proven by binding as it; null when the password or the name is wrong. */
  private async bindAsUser(client: Client, login: string, password: string): Promise<string | null> {
    const candidates = this.config.search ? await this.lookupDn(client, login) : this.config.bind_dn_templates.map(
      (t) => t.replaceAll('{username}', escapeDnValue(login)));
    for (const dn of candidates) {
      try {
        await client.bind(dn, password);
        return dn;
      } catch (err) {
        if (!(err instanceof InvalidCredentialsError)) throw err;
      }
    }
    return null;
  }

  private async lookupDn(client: Client, login: string): Promise<string[]> {
    const search = this.config.search!;
    await client.bind(search.bind_dn, search.bind_password);
    const match = fillFilter(`(${search.user_attribute}={login})`, { login });
    const filter = search.filter ? `(&${search.filter}${match})` : match;
    const { searchEntries } = await client.search(search.base_dn, { scope: 'sub', filter, attributes: ['dn'], sizeLimit: 2 })
      .catch(() => ({ searchEntries: [] as Entry[] }));
    // Zero or several entries: refuse rather than pick one (ldapauthenticator #276).
    return searchEntries.length === 1 ? [searchEntries[0]!.dn] : [];
  }

  private async hubName(client: Client, userDn: string, login: string): Promise<string | null> {
    const attribute = this.config.username_attribute;
    if (!attribute) return login;
    const { searchEntries } = await client.search(userDn, { scope: 'base', filter: '(objectClass=*)', attributes: [attribute] });
    const value = searchEntries[0] && firstValue(searchEntries[0], attribute);
    const name = value === undefined ? '' : normalizeUsername(value);
    return validateUsername(name) === null ? name : null;
  }

  private async groupsOf(client: Client, userDn: string, login: string): Promise<string[]> {
    const groupSearch = this.config.group_search;
    if (!groupSearch) return [];
    const filter = fillFilter(groupSearch.filter, { dn: userDn, username: login });
    const { searchEntries } = await client.search(groupSearch.base_dn, { scope: 'sub', filter, attributes: [groupSearch.name_attribute] });
    return searchEntries.map((e) => firstValue(e, groupSearch.name_attribute)).filter((g): g is string => Boolean(g));
  }
}
