import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

/** Whether host:port accepts a TCP connection within 500 ms. */
export function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: 500 });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** Waits until a service started as `child` accepts TCP on 127.0.0.1:port; kills it and throws if it exits or times out. */
export async function waitForListening(child: ChildProcess, port: number, timeoutMs: number, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portAnswers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(why());
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then waits for the exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
