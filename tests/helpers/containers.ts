/** Commands run inside containers on the real Docker engine. */
import Docker from 'dockerode';
import { DockerSpawner } from '../../spawners/docker.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/**
 * Runs `cmd` in a running container and returns its exit code and what it printed (stdout and stderr, in order,
 * trimmed). The exec stream is Docker's multiplexed one: 8-byte frame headers (stream, size) before each chunk.
 */
export async function execIn(containerId: string, cmd: string[]): Promise<{ exitCode: number | null; output: string }> {
  const e = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const raw = Buffer.concat(chunks);
  let out = '';
  for (let i = 0; i + 8 <= raw.length;) {
    const size = raw.readUInt32BE(i + 4);
    out += raw.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return { exitCode: (await e.inspect()).ExitCode, output: out.trim() };
}

/**
 * Where containers on the default bridge reach the host, as the Docker spawner computes it. A fresh engine lists the
 * default bridge without a gateway, so tests must not read the network's IPAM themselves.
 */
export async function bridgeGateway(): Promise<string> {
  const address = await new DockerSpawner({ image: 'unused' }).gatewayAddress();
  if (!address) throw new Error('the Docker spawner found no IPv4 address for the default bridge');
  return address;
}

/** Removes every container and volume a test hub labelled with its hub id (`org.labhub.hub`), running or not. */
export async function removeHubObjects(hubId: string): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
  for (const v of (await docker.listVolumes({ filters: { label: [`org.labhub.hub=${hubId}`] } })).Volumes ?? []) {
    await docker.getVolume(v.Name).remove().catch(() => undefined);
  }
}

/** A hub's environment for the Docker spawner with the notebook image, never pulled, listening where containers reach it. */
export async function dockerSpawnerEnv(hubId: string, image: string): Promise<Record<string, string>> {
  return {
    LABHUB_SPAWNER__KIND: 'docker',
    LABHUB_SPAWNER__DOCKER__IMAGE: image,
    LABHUB_SPAWNER__DOCKER__PULL_POLICY: 'never',
    LABHUB_SPAWNER__DOCKER__HUB_ID: hubId,
    LABHUB_SPAWNER__DOCKER__MEM_LIMIT: '1g',
    // Containers reach the hub on the bridge gateway, so the hub listens there.
    LABHUB_HUB__IP: await bridgeGateway(),
  };
}
