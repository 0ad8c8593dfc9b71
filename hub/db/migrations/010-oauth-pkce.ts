import { sql, type Kysely, type Migration } from 'kysely';

/** PKCE (RFC 7636) for the hub's OAuth provider, as JupyterHub 6.0's single-user servers use it: the S256 challenge of a code. */
export function oauthPkce(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`alter table oauth_codes add column code_challenge text`.execute(db);
    },
  };
}
