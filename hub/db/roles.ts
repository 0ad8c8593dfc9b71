import type { Db } from './database.js';
import { CompiledQueries } from './compiled-queries.js';

export type RoleMemberKind = 'user' | 'group' | 'service';

/** The built-in role whose user and service members are the hub's admins (JupyterHub: membership sets `admin`). */
export const ADMIN_ROLE = 'admin';

export interface RoleDefinition {
  name: string;
  description: string;
  scopes: string[];
}

/** Roles and who holds them. Default roles are not stored: they follow from `admin` and the role model. */
export class RoleRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  async list(): Promise<RoleDefinition[]> {
    const rows = await this.db.selectFrom('roles').selectAll().orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, description: r.description, scopes: JSON.parse(r.scopes) as string[] }));
  }

  /** Replaces the config-declared roles and their members with exactly these, in one transaction. */
  async replaceAll(roles: Array<RoleDefinition & { members: Array<{ kind: RoleMemberKind; id: number }> }>): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('role_members').execute();
      await trx.deleteFrom('roles').execute();
      for (const role of roles) {
        const row = await trx.insertInto('roles').values({ name: role.name, description: role.description, scopes: JSON.stringify(role.scopes) })
          .returning('id').executeTakeFirstOrThrow();
        if (role.members.length) {
          await trx.insertInto('role_members').values(role.members.map((m) => ({ role_id: row.id, kind: m.kind, member_id: m.id }))).execute();
        }
      }
    });
  }

  /** Names of the roles held directly by a member. */
  async rolesOf(kind: RoleMemberKind, memberIds: number[]): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>(memberIds.map((id) => [id, []]));
    if (!memberIds.length) return out;
    const rows = await this.compiled.rows('rolesOf', [kind, memberIds], (k, ids) => this.db.selectFrom('role_members')
      .innerJoin('roles', 'roles.id', 'role_members.role_id')
      .select(['role_members.member_id', 'roles.name']).where('role_members.kind', '=', k)
      .where('role_members.member_id', 'in', ids).orderBy('roles.name'));
    for (const r of rows) out.get(r.member_id)?.push(r.name);
    return out;
  }

  /** Ids of the members of one kind a role has (the config's last word on who holds it). */
  async memberIds(roleName: string, kind: RoleMemberKind): Promise<number[]> {
    const rows = await this.db.selectFrom('role_members').innerJoin('roles', 'roles.id', 'role_members.role_id')
      .select('role_members.member_id').where('roles.name', '=', roleName).where('role_members.kind', '=', kind).execute();
    return rows.map((r) => r.member_id);
  }

  /**
   * Scopes of every role a user holds directly or through a group. Holding `admin` directly adds nothing here: it
   * sets the user's admin flag, which grants the admin scopes, so revoking admin through the API takes them away.
   */
  async scopesForUser(userId: number): Promise<string[]> {
    const rows = await this.compiled.rows('scopesForUser', [userId, userId], (direct, viaGroups) => this.db.selectFrom('role_members')
      .innerJoin('roles', 'roles.id', 'role_members.role_id')
      .select('roles.scopes')
      .where((eb) => eb.or([
        eb.and([eb('role_members.kind', '=', 'user'), eb('role_members.member_id', '=', direct), eb('roles.name', '!=', ADMIN_ROLE)]),
        eb.and([eb('role_members.kind', '=', 'group'), eb('role_members.member_id', 'in',
          eb.selectFrom('user_groups').select('group_id').where('user_id', '=', viaGroups))]),
      ])));
    return rows.flatMap((r) => JSON.parse(r.scopes) as string[]);
  }

  /** Scopes of the roles a service holds; like a user's, its `admin` comes from its admin flag. */
  async scopesForService(serviceId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('role_members').innerJoin('roles', 'roles.id', 'role_members.role_id')
      .select('roles.scopes').where('role_members.kind', '=', 'service').where('role_members.member_id', '=', serviceId)
      .where('roles.name', '!=', ADMIN_ROLE).execute();
    return rows.flatMap((r) => JSON.parse(r.scopes) as string[]);
  }
}
