import { fileURLToPath } from 'node:url';
import nunjucks from 'nunjucks';

/** Where templates and static files live: `templates/` at the package root, for both `hub/` and `dist/hub/`. */
export const TEMPLATES_DIR = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../templates/' : '../../templates/', import.meta.url));

const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATES_DIR, { noCache: false }), {
  autoescape: true,
  throwOnUndefined: false,
});

/** `2026-11-22 07:05 UTC` from a stored ISO time; empty for none. */
export function shortTime(iso: string | null | undefined): string {
  return iso ? `${iso.replace('T', ' ').slice(0, 16)} UTC` : '';
}
env.addFilter('when', shortTime);

/** `512 MiB`, `2 GiB` from bytes. */
env.addFilter('bytes', (n: number | undefined) => {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
});

/** Renders a page; every value is HTML-escaped by the engine unless a template says otherwise (none does). */
export function renderPage(template: string, context: Record<string, unknown>): string {
  return env.render(template, context);
}
