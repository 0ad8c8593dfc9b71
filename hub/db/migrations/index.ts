import type { Migration } from 'kysely';
import type { Dialect } from '../database.js';
import { initial } from './001-initial.js';
import { auth } from './002-auth.js';
import { credentials } from './003-credentials.js';
import { userUid } from './004-user-uid.js';
import { oneTimeLinks } from './005-one-time-links.js';
import { authEpoch } from './006-auth-epoch.js';
import { audit } from './008-audit.js';
import { shares } from './009-shares.js';
import { oauthPkce } from './010-oauth-pkce.js';
import { serverDisplayName } from './011-server-display-name.js';
import { userInfo } from './012-user-info.js';
import { usage } from './013-usage.js';

/** Every migration, in order. Names sort lexically; a new one gets the next number and is never edited after release. */
export function allMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '001-initial': initial(dialect),
    '002-auth': auth(),
    '003-credentials': credentials(dialect),
    '004-user-uid': userUid(),
    '005-one-time-links': oneTimeLinks(),
    '006-auth-epoch': authEpoch(dialect),
    '008-audit': audit(dialect),
    '009-shares': shares(dialect),
    '010-oauth-pkce': oauthPkce(),
    '011-server-display-name': serverDisplayName(),
    '012-user-info': userInfo(),
    '013-usage': usage(dialect),
  };
}
