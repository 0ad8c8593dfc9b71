import { CompiledQueries } from './compiled-queries.js';
import type { Db } from './database.js';

/** The counter DB triggers bump whenever what a token may do changes (migration 006-auth-epoch). */
export class AuthEpochRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  /** The current epoch, as a string: PostgreSQL's bigint arrives as one, and only equality matters. */
  async current(): Promise<string> {
    const [row] = await this.compiled.rows('authEpoch', [], () => this.db.selectFrom('auth_epoch').select('epoch').where('id', '=', 1));
    return String(row?.epoch ?? '');
  }
}
