import type { CompiledQuery } from 'kysely';
import type { Db } from './database.js';

/** The counter DB triggers bump whenever what a token may do changes (migration 006-auth-epoch). */
export class AuthEpochRepository {
  /** Built once: this runs on every token-authenticated request, and building a query costs more than running it. */
  private query: CompiledQuery<{ epoch: unknown }> | undefined;

  constructor(private readonly db: Db) {}

  /** The current epoch, as a string: PostgreSQL's bigint arrives as one, and only equality matters. */
  async current(): Promise<string> {
    this.query ??= this.db.selectFrom('auth_epoch').select('epoch').where('id', '=', 1).compile();
    const { rows } = await this.db.executeQuery(this.query);
    return String(rows[0]?.epoch ?? '');
  }
}
