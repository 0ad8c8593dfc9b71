import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The JupyterHub REST API version LabHub implements: clients gate features on it (e.g. the idle culler's `state` filter). */
export const JUPYTERHUB_API_VERSION = '5.5.1';

/** LabHub's own version, from package.json. */
export const VERSION: string = (JSON.parse(readFileSync(fileURLToPath(new URL(
  import.meta.url.includes('/dist/') ? '../../package.json' : '../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
