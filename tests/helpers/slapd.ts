import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export const SLAPD = '/usr/sbin/slapd';
export const BASE_DN = 'dc=example,dc=org';
export const ADMIN_DN = `cn=admin,${BASE_DN}`;
export const ADMIN_PASSWORD = 'admin-pw-123';
export const SERVICE_DN = `cn=hub-reader,ou=services,${BASE_DN}`;
export const SERVICE_PASSWORD = 'reader-pw-456';

export interface LdapPerson {
  uid: string;
  password: string;
  /** mail, used as the hub name in username-mapping tests. */
  mail?: string;
}

export interface LdapFixture {
  people: LdapPerson[];
  /** group cn → member uids */
  groups: Record<string, string[]>;
}

const personDn = (uid: string) => `uid=${uid},ou=people,${BASE_DN}`;

function seed(fixture: LdapFixture): string {
  const hash = (pw: string) => execFileSync('slappasswd', ['-s', pw], { encoding: 'utf8' }).trim();
  const blocks = [
    `dn: ${BASE_DN}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example`,
    `dn: ou=people,${BASE_DN}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${BASE_DN}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=services,${BASE_DN}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: hub-reader\nuserPassword: ${hash(SERVICE_PASSWORD)}`,
    ...fixture.people.map((p, i) => [
      `dn: ${personDn(p.uid)}`, 'objectClass: inetOrgPerson', 'objectClass: posixAccount', `uid: ${p.uid}`, `cn: ${p.uid}`, `sn: ${p.uid}`,
      `uidNumber: ${20000 + i}`, 'gidNumber: 20000', `homeDirectory: /home/${p.uid}`, `userPassword: ${hash(p.password)}`,
      ...(p.mail ? [`mail: ${p.mail}`] : []),
    ].join('\n')),
    ...Object.entries(fixture.groups).map(([cn, members]) => [
      `dn: cn=${cn},ou=groups,${BASE_DN}`, 'objectClass: groupOfNames', `cn: ${cn}`,
      ...(members.length ? members : ['nobody']).map((uid) => `member: ${personDn(uid)}`),
    ].join('\n')),
  ];
  return `${blocks.join('\n\n')}\n`;
}

/**
 * A throwaway OpenLDAP server: its own temp dir, a slapd.conf, the fixture loaded with slapadd, a high port.
 * `allowAnonymousDnBind` emulates Active Directory: a DN with an empty password binds (anonymously) with success.
 */
export class Slapd {
  readonly dir = mkdtempSync(join(tmpdir(), 'labhub-slapd-'));
  port = 0;

  /** The LDAPS port, when started with `tls`. */
  tlsPort = 0;

  /** `host`: the address it listens on (default loopback; a node's address for pods to reach it). */
  constructor(private readonly fixture: LdapFixture, private readonly options: { allowAnonymousDnBind?: boolean; tls?: boolean; host?: string } = {}) {}

  get url(): string {
    return `ldap://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  get ldapsUrl(): string {
    return `ldaps://127.0.0.1:${this.tlsPort}`;
  }

  /** PEM of the throwaway CA that signed the server's certificate (with `tls`). */
  get caFile(): string {
    return join(this.dir, 'ca.pem');
  }

  /** A CA and a server certificate for 127.0.0.1, made with openssl; returns slapd.conf lines. */
  private makeCertificates(): string[] {
    const f = (name: string) => join(this.dir, name);
    const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=LabHub test CA']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('san.ext')]);
    return [`TLSCACertificateFile ${f('ca.pem')}`, `TLSCertificateFile ${f('server.pem')}`, `TLSCertificateKeyFile ${f('server.key')}`];
  }

  userDn(uid: string): string {
    return personDn(uid);
  }

  async start(): Promise<void> {
    mkdirSync(join(this.dir, 'db'));
    const rootpw = execFileSync('slappasswd', ['-s', ADMIN_PASSWORD], { encoding: 'utf8' }).trim();
    const conf = join(this.dir, 'slapd.conf');
    writeFileSync(conf, [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      'modulepath /usr/lib/ldap', 'moduleload back_mdb', `pidfile ${this.dir}/slapd.pid`,
      ...(this.options.allowAnonymousDnBind ? ['allow bind_anon_dn'] : []),
      ...(this.options.tls ? this.makeCertificates() : []),
      'database mdb', 'maxsize 33554432', `suffix "${BASE_DN}"`, `rootdn "${ADMIN_DN}"`, `rootpw ${rootpw}`, `directory ${this.dir}/db`,
      'access to attrs=userPassword by self write by anonymous auth by * none',
      'access to * by * read', '',
    ].join('\n'));
    writeFileSync(join(this.dir, 'seed.ldif'), seed(this.fixture));
    execFileSync('slapadd', ['-f', conf, '-l', join(this.dir, 'seed.ldif')], { stdio: 'pipe' });
    this.port = await freePort();
    if (this.options.tls) this.tlsPort = await freePort();
    const listeners = [`${this.url}/`, ...(this.options.tls ? [`${this.ldapsUrl}/`] : [])].join(' ');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(SLAPD, ['-f', conf, '-h', listeners], { stdio: 'pipe' });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`slapd exited with ${code}: ${err}`))));
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        execFileSync('ldapsearch', ['-x', '-H', this.url, '-b', BASE_DN, '-s', 'base', '(objectClass=*)', 'dn'], { stdio: 'pipe' });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('slapd did not answer');
  }

  async stop(): Promise<void> {
    const pidFile = join(this.dir, 'slapd.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const deadline = Date.now() + 5000;
      while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const slapdAvailable = existsSync(SLAPD);
