import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import nunjucks from 'nunjucks';
import { REPO } from './hub.js';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export const SCREENSHOTS = join(REPO, 'docs/screenshots');

interface AxeViolation { id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }

/**
 * Runs axe-core in the page (through the DevTools protocol, so the page's CSP still holds for the page's own
 * scripts) against WCAG 2.x A and AA, and fails on any serious or critical violation.
 */
export async function expectAccessible(page: Page): Promise<void> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const { axe, document } = globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> }; document: unknown };
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious, `${page.url()}: ${JSON.stringify(serious, null, 1)}`).toEqual([]);
}

/** Saves a screenshot of the page under docs/screenshots/ (the README shows them). */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true, animations: 'disabled' });
}

/** Logs in through the login form and waits for the home page. */
export async function logIn(page: Page, base: string, name: string, password: string): Promise<void> {
  await page.goto(`${base}/hub/login`);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/hub\/home$/);
}

/** Collects Content-Security-Policy violations reported on the console. */
export function watchCsp(page: Page): string[] {
  const violations: string[] = [];
  page.on('console', (msg) => {
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
  });
  return violations;
}

export interface ClassForm {
  name: string;
  slug: string;
  displayName: string;
  description?: string;
  image: string;
  cpu: string;
  memory: string;
}

/** Creates a class with one profile through the admin pages, as an admin would; leaves the page on the class. */
export async function createClassInBrowser(page: Page, base: string, form: ClassForm): Promise<void> {
  await page.goto(`${base}/hub/admin/classes`);
  await page.getByLabel('Name').fill(form.name);
  await page.getByRole('button', { name: 'Create class' }).click();
  await page.waitForURL(new RegExp(`/hub/admin/classes/${encodeURIComponent(form.name)}`));
  await page.getByLabel('Short name').fill(form.slug);
  await page.getByLabel('Display name').fill(form.displayName);
  await page.getByLabel('Description').fill(form.description ?? '');
  await page.getByLabel('Image').fill(form.image);
  await page.getByLabel('CPU limit').fill(form.cpu);
  await page.getByLabel('Memory limit').fill(form.memory);
  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.waitForURL(/done=/);
}

const escaping = new nunjucks.Environment(null, { autoescape: true });

/** Text as the hub's templates write it (nunjucks with autoescape, as hub/pages/render.ts renders). */
export const asRendered = (text: string): string => escaping.renderString('{{ text }}', { text });

/** The text a rendered fragment shows: the five characters nunjucks escapes, back. */
export function renderedText(html: string): string {
  return html.replaceAll('&#39;', "'").replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}
