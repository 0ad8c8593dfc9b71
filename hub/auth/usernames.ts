/**
 * Usernames: one normal form, and a rule for which names the hub accepts.
 *
 * Normal form: Unicode NFKC, then lowercase, then NFKC again (lowercasing can leave a string that is not
 * NFKC). JupyterHub only lowercases; NFKC additionally folds look-alike compatibility forms (fullwidth
 * "ａｌｉｃｅ", ligatures, the KELVIN SIGN "K") onto one account. Names that normalize alike ARE the
 * same user: an identity provider allowing "Kelvin" and "kelvin" as different people must be mapped
 * on a stable id instead. Visually confusable letters from different scripts (Cyrillic "а" vs Latin "a")
 * are not folded and stay different users.
 *
 * Accepted names (checked after normalization; the API answers 400 otherwise):
 * - 1 to 64 characters (code points); JupyterHub has no limit, but names end up in URLs, cookie names,
 *   container and database role names;
 * - Unicode letters and digits, combining marks, and `.` `_` `-` `@` `+` (so e-mail-style names work);
 * - starting with a letter or digit, so never `.`, `..`, a hidden file name or a command-line option;
 * - nothing else: no `/`, `\`, whitespace, control or format characters, `%`, `?`, `#`, `&`, quotes.
 */

export const USERNAME_MAX_LENGTH = 64;

export function normalizeUsername(raw: string): string {
  return raw.normalize('NFKC').toLowerCase().normalize('NFKC');
}

const ALLOWED = /^[\p{L}\p{N}][\p{L}\p{M}\p{N}._@+-]*$/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `name` (already normalized) is not an acceptable username, or null if it is. */
export function validateUsername(name: string): string | null {
  if (name === '') return 'Username must not be empty';
  // Check the cheap UTF-16 bound first so a megabyte of input is not split into code points.
  if (name.length > 2 * USERNAME_MAX_LENGTH || [...name].length > USERNAME_MAX_LENGTH) {
    return `Username must be at most ${USERNAME_MAX_LENGTH} characters`;
  }
  if (CONTROL.test(name)) return 'Username must not contain control characters';
  if (name !== name.trim()) return 'Username must not start or end with whitespace';
  if (name.includes('/')) return "Username must not contain '/'";
  if (name === '.' || name === '..') return "Username must not be '.' or '..'";
  if (name !== normalizeUsername(name)) return 'Username must be lowercase and in Unicode NFKC form';
  if (!ALLOWED.test(name)) {
    return 'Username must start with a letter or digit and contain only letters, digits and . _ - @ +';
  }
  return null;
}

/**
 * A name as one URL path segment, as JupyterHub's `url_escape_path` (`quote(name, safe='@~')`) does,
 * so `/user/a@b/` is the same URL here and in jupyterhub-singleuser.
 */
export function escapeForPath(name: string): string {
  return encodeURIComponent(name)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%40', '@');
}
