import { HttpError } from '../errors.js';

/**
 * Spawn options carried in a link or a form as `opt-<key>=<value>` (JupyterHub 6.0: query parameters on
 * `/hub/spawn` are options only with that prefix). They become the server's `user_options`, as strings.
 */
export const OPTION_PREFIX = 'opt-';
const MAX_OPTIONS = 20;
const MAX_VALUE = 1000;
const OPTION_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** JupyterHub 6.1 keeps these for itself and never saves them from users. */
const RESERVED_PREFIX = '__jupyterhub_';

/** The `opt-` fields of a parsed query or form body; anything malformed is a 400 that names it. */
export function prefixedOptions(fields: Record<string, unknown> | undefined): Record<string, string> {
  const options: Record<string, string> = {};
  for (const [field, value] of Object.entries(fields ?? {})) {
    if (!field.startsWith(OPTION_PREFIX)) continue;
    const key = field.slice(OPTION_PREFIX.length);
    if (!OPTION_KEY.test(key)) throw new HttpError(400, `Option names are letters, digits, '.', '_' and '-', up to 64: ${field.slice(0, 80)}`);
    if (typeof value !== 'string') throw new HttpError(400, `Give ${OPTION_PREFIX}${key} once, as text`);
    if (value.length > MAX_VALUE) throw new HttpError(400, `${OPTION_PREFIX}${key} is longer than ${MAX_VALUE} characters`);
    if (key.startsWith(RESERVED_PREFIX)) continue;
    options[key] = value;
    if (Object.keys(options).length > MAX_OPTIONS) throw new HttpError(400, `At most ${MAX_OPTIONS} options`);
  }
  return options;
}
