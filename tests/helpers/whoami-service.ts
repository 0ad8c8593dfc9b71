import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema, type ServiceConfig } from '../../hub/config/schema.js';
import { serviceClient, servicePrefix } from '../../hub/services/oauth-clients.js';
import { eventually, REPO } from './hub.js';
import { JH5_VENV } from './jupyter.js';

const PYTHON = join(JH5_VENV, 'bin/python');
export const whoamiAvailable = () => existsSync(PYTHON);

/**
 * tests/fixtures/whoami-service.py, a service built on the `jupyterhub` package (HubOAuth page, HubAuth API), run
 * with the environment JupyterHub gives a service it launches, for `service` as the hub's config declares it.
 */
export class WhoamiService {
  private child: ChildProcess | null = null;
  log = '';

  constructor(private readonly hubUrl: string, private readonly service: Record<string, unknown> & { name: string; url: string; api_token: string }) {}

  get prefix(): string {
    return servicePrefix(this.service.name);
  }

  async start(): Promise<void> {
    const parsed: ServiceConfig = configSchema.parse({ services: [this.service] }).services[0]!;
    const client = serviceClient(parsed)!;
    this.child = spawn(PYTHON, [join(REPO, 'tests/fixtures/whoami-service.py')], {
      env: {
        PATH: process.env.PATH ?? '', WHOAMI_PORT: new URL(this.service.url).port,
        JUPYTERHUB_SERVICE_NAME: this.service.name, JUPYTERHUB_API_TOKEN: this.service.api_token, JUPYTERHUB_API_URL: `${this.hubUrl}/hub/api`,
        JUPYTERHUB_BASE_URL: '/', JUPYTERHUB_SERVICE_PREFIX: this.prefix, JUPYTERHUB_CLIENT_ID: client.identifier,
        JUPYTERHUB_OAUTH_CALLBACK_URL: client.redirectUri, JUPYTERHUB_OAUTH_ACCESS_SCOPES: JSON.stringify(client.allowedScopes),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    await eventually(async () => {
      if (this.child!.exitCode !== null) throw new Error(`the service exited:\n${this.log}`);
      return this.log.includes('whoami service listening');
    }, 20_000);
  }

  stop(): void {
    this.child?.kill();
  }
}
