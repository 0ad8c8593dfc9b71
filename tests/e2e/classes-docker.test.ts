import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { api, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { bridgeGateway } from '../helpers/containers.js';
import { createClassInBrowser, expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';

/**
 * Classes end to end with the Docker spawner: an admin, in Chromium, creates a user, a class with a profile (image,
 * CPU, memory) and a shared volume, and puts the user in it; the user starts that profile from their home page and
 * the container runs the class's image with the class's limits and the class volume mounted read-only.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const MISSING_IMAGE = 'labhub/not-built-here:1';
const docker = new Docker();
const engineUp = await docker.ping().then(() => true, () => false);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('Docker engine', engineUp)
  && requireService(`Docker image ${IMAGE}`, engineUp && await docker.getImage(IMAGE).inspect().then(() => true, () => false));

describe.skipIf(!ready)('a class profile started in Docker from the web UI', () => {
  const hubId = `ui-${randomBytes(4).toString('hex')}`;
  const classVolume = `${hubId}-bio101-materials`;
  let hub: HubProcess;
  let browser: Browser;
  let adminToken = '';

  beforeAll(async () => {
    const gateway = await bridgeGateway();
    hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__KIND: 'docker', LABHUB_SPAWNER__DOCKER__IMAGE: IMAGE, LABHUB_SPAWNER__DOCKER__PULL_POLICY: 'never',
        LABHUB_SPAWNER__DOCKER__HUB_ID: hubId,
        // Containers reach the hub on the bridge gateway, so the hub listens there.
        LABHUB_HUB__IP: gateway,
        LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_AUTHENTICATOR__PASSWORD: 'test-password',
        // The admin's bounds: the class volume may be mounted, and a second image (never built here) may be named.
        LABHUB_CLASSES__SHARED_VOLUMES: JSON.stringify([classVolume]),
        LABHUB_CLASSES__IMAGES: JSON.stringify([IMAGE, MISSING_IMAGE]),
      },
    });
    // The class's material: a volume with one file, written as root as a teacher's upload would be.
    await docker.createVolume({ Name: classVolume, Labels: { 'org.labhub.hub': hubId } });
    const writer = await docker.createContainer({
      Image: IMAGE, User: '0', Entrypoint: ['sh', '-c', 'echo "welcome to bio101" > /m/readme.txt'],
      HostConfig: { Mounts: [{ Type: 'volume', Source: classVolume, Target: '/m' }] },
    });
    await writer.start();
    await writer.wait();
    await writer.remove();
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ada', '--admin'])).status).toBe(0);
    adminToken = (await hub.cli(['token', 'ada'])).stdout.trim();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await api(hub.url, adminToken, 'DELETE', '/users/cleo/server').catch(() => undefined);
    await browser?.close();
    await hub.cleanup();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    for (const v of (await docker.listVolumes()).Volumes ?? []) {
      if (v.Labels?.['org.labhub.hub'] === hubId || v.Name === classVolume) await docker.getVolume(v.Name).remove().catch(() => undefined);
    }
  });

  it('starts the user\'s server with the class image, CPU and memory limits, and the class volume read-only', async () => {
    const admin = await browser.newPage();
    await logIn(admin, hub.url, 'ada', 'test-password');
    await admin.goto(`${hub.url}/hub/admin/users`);
    await admin.getByLabel('Usernames').fill('cleo');
    await admin.getByRole('button', { name: 'Add users' }).click();
    await admin.waitForURL(/done=/);

    await createClassInBrowser(admin, hub.url, { name: 'bio101', slug: 'python', displayName: 'Python (DataLab)', image: IMAGE, cpu: '0.5', memory: '768M' });
    await admin.getByLabel('Shared volume', { exact: true }).fill(classVolume);
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await admin.waitForURL(/done=/);
    await admin.getByLabel('Add members').fill('cleo');
    await admin.getByRole('button', { name: 'Update members' }).click();
    await admin.waitForURL(/done=/);
    expect(await admin.getByRole('link', { name: 'cleo' }).count()).toBe(1);
    await expectAccessible(admin);

    const page = await browser.newPage();
    const csp = watchCsp(page);
    await logIn(page, hub.url, 'cleo', 'test-password');
    expect(await page.getByRole('radio', { name: /Python \(DataLab\)/ }).isChecked()).toBe(true);
    // Containers apply the profile, so the page lists what it gives.
    expect(await page.locator('.profile-specs').first().textContent()).toMatch(/CPU[\s\S]*memory/);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/\/hub\/spawn-pending\/cleo$|\/user\/cleo\//);
    await page.waitForURL(/\/user\/cleo\/(tree|lab)/, { timeout: 90_000 });
    expect(csp).toEqual([]);

    const [summary] = await docker.listContainers({ filters: { label: [`org.labhub.hub=${hubId}`, 'org.labhub.user=cleo'] } });
    const info = await docker.getContainer(summary!.Id).inspect();
    expect(info.Config.Image).toBe(IMAGE);
    expect(info.Config.Labels['org.labhub.profile']).toBe('bio101/python');
    expect(info.HostConfig.NanoCpus).toBe(0.5e9);
    expect(info.HostConfig.Memory).toBe(768 * 1024 ** 2);
    const shared = info.Mounts.find((m) => m.Name === classVolume);
    expect(shared).toMatchObject({ Destination: '/home/jovyan/shared/bio101', RW: false });

    // The notebook user reads the class material through Jupyter, and cannot change it.
    const contents = await page.evaluate(async () => {
      const { cookie } = (globalThis as unknown as { document: { cookie: string } }).document;
      const xsrf = decodeURIComponent(/(?:^|; )_xsrf=([^;]*)/.exec(cookie)?.[1] ?? '');
      const read = await fetch('/user/cleo/api/contents/shared/bio101/readme.txt?type=file&format=text');
      const write = await fetch('/user/cleo/api/contents/shared/bio101/mine.txt', {
        method: 'PUT', headers: { 'X-XSRFToken': xsrf, 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'file', format: 'text', content: 'x' }),
      });
      return { read: read.status, text: ((await read.json()) as { content?: string }).content, write: write.status };
    });
    expect(contents).toMatchObject({ read: 200, text: 'welcome to bio101\n' });
    expect(contents.write).toBeGreaterThanOrEqual(400);

    const user = await api(hub.url, adminToken, 'GET', '/users/cleo');
    expect((user.body as { servers: Record<string, { user_options: unknown }> }).servers['']?.user_options).toEqual({ profile: 'bio101/python' });
  });

  it('shows why a start failed, and offers to try again', async () => {
    expect((await api(hub.url, adminToken, 'DELETE', '/users/cleo/server')).status).toBe(204);
    const group = await api(hub.url, adminToken, 'GET', '/groups/bio101');
    const properties = (group.body as { properties: { profiles: unknown[] } }).properties;
    properties.profiles.push({ slug: 'missing', display_name: 'Missing image', image: MISSING_IMAGE });
    expect((await api(hub.url, adminToken, 'PUT', '/groups/bio101/properties', properties)).status).toBe(200);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(page, hub.url, 'cleo', 'test-password');
    await page.getByRole('radio', { name: /Missing image/ }).check();
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/\/hub\/spawn-pending\/cleo$/);
    // The student gets plain words and the step it stopped at; the engine's reason is for admins.
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent(), { timeout: 30_000 }).toMatch(/Something went wrong while starting the server/);
    expect(await page.locator('main').textContent()).not.toMatch(/not-built-here/);
    // When the start failed before the page's event stream opened, the page asks again how far it came: the step
    // is marked a moment after the alert.
    await expect.poll(() => page.locator('#progress-steps li.failed').count(), { timeout: 10_000 }).toBe(1);
    const retry = page.getByRole('button', { name: 'Try again' });
    expect(await retry.isVisible()).toBe(true);
    expect(await retry.evaluate((el) => (el as unknown as { matches(s: string): boolean }).matches(':focus'))).toBe(true);
    await expectAccessible(page);
    await screenshot(page, 'spawn-failed');
    const admin = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await logIn(admin, hub.url, 'ada', 'test-password');
    await admin.goto(`${hub.url}/hub/spawn-pending/cleo`);
    await expect.poll(() => admin.getByRole('alert').textContent(), { timeout: 30_000 }).toMatch(/Spawn failed: .*not-built-here/);
    expect(await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`, 'org.labhub.user=cleo'] } })).toEqual([]);
  });
});
