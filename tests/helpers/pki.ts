/** A throwaway PKI made with openssl for TLS tests: what JupyterHub's internal_ssl sets up, in small. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestPki {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** Another CA, then `ca`: a trust bundle of several CAs, as JupyterHub writes them. */
  bundle: string;
  /** For 127.0.0.1 and localhost, signed by `ca`. */
  serverKey: string;
  serverCert: string;
  /** A client certificate (extendedKeyUsage clientAuth) signed by `ca`. */
  clientKey: string;
  clientCert: string;
  /** For 127.0.0.1, self-signed: from a CA nobody trusts. */
  strangerKey: string;
  strangerCert: string;
  read(file: string): Buffer;
  remove(): void;
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'labhub-pki-'));
  // EC keys: an RSA key takes openssl a noticeable time on a busy 2-core machine.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', ...newKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=LabHub test CA');
  openssl('req', '-x509', ...newKey, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=LabHub other CA');
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subject] of [['server', '/CN=127.0.0.1'], ['client', '/CN=labhub-proxy-client']] as const) {
    openssl('req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
  openssl('req', '-x509', ...newKey, '-keyout', 'stranger.key', '-out', 'stranger.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
  const file = (name: string) => path.join(dir, name);
  writeFileSync(file('bundle.pem'), Buffer.concat([readFileSync(file('other-ca.pem')), readFileSync(file('ca.pem'))]));
  return {
    dir,
    ca: file('ca.pem'),
    bundle: file('bundle.pem'),
    serverKey: file('server.key'),
    serverCert: file('server.pem'),
    clientKey: file('client.key'),
    clientCert: file('client.pem'),
    strangerKey: file('stranger.key'),
    strangerCert: file('stranger.pem'),
    read: (name) => readFileSync(name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
