/** The environment variable that tells a server where its secret files are (SpawnRequest.secretFiles). */
export const SECRETS_DIR_ENV = 'LABHUB_SECRETS_DIR';

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const MAX_TOTAL_BYTES = 1024 * 1024;

/** The request's secret files as [name, content] pairs, after checking that every name is a plain file name. */
export function secretFileEntries(files: Record<string, string> | undefined): Array<[string, string]> {
  const entries = Object.entries(files ?? {});
  let total = 0;
  for (const [name, content] of entries) {
    if (!FILE_NAME.test(name)) throw new Error(`invalid secret file name ${JSON.stringify(name.slice(0, 120))}`);
    if (typeof content !== 'string') throw new Error(`secret file ${name} must be text`);
    total += Buffer.byteLength(content);
  }
  if (total > MAX_TOTAL_BYTES) throw new Error('secret files are larger than 1 MiB in all');
  return entries;
}
