import { fileURLToPath } from 'node:url';
import nunjucks from 'nunjucks';

/** Where templates and static files live: `templates/` at the package root, for both `hub/` and `dist/hub/`. */
export const TEMPLATES_DIR = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../templates/' : '../../templates/', import.meta.url));

const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATES_DIR, { noCache: false }), {
  autoescape: true,
  throwOnUndefined: false,
});

/** Renders a page; every value is HTML-escaped by the engine unless a template says otherwise (none does). */
export function renderPage(template: string, context: Record<string, unknown>): string {
  return env.render(template, context);
}
