/**
 * Response validation against JupyterHub 5.5.1's published OpenAPI 3.1 spec
 * (/work/shared/contracts/jupyterhub-rest-api-5.5.1.yml, copied from jupyterhub/jupyterhub at tag 5.5.1).
 *
 * The whole spec is added to one Ajv (JSON Schema 2020-12) instance under SPEC_ID, and each operation's response
 * schema is compiled as a `$ref` into it, so the spec's own `#/components/schemas/...` references resolve as written.
 *
 * Two deliberate relaxations, as /work/shared/contracts/README.md asks:
 * - `null` is accepted wherever the spec gives a `type` or an `enum` (JupyterHub itself answers null for
 *   `pending`, `last_activity`, `expires_at`, `started`, ... which the spec types as plain strings or enums);
 * - properties the spec does not list are accepted unless it says `additionalProperties: false`
 *   (JSON Schema's default; nothing is tightened here).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { REPO } from './hub.js';

// ajv and ajv-formats are CommonJS: under NodeNext the default import is `module.exports`, whose `.default` is the export.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

/** The JupyterHub REST API specs LabHub answers to: 5.5.1, and 6.0's beta. */
export type SpecVersion = '5.5.1' | '6.0.0b2';

/** Where a contract lives: the shared contracts directory, or a copy in the directory of LABHUB_OPENAPI_SPEC. */
export function specPath(version: SpecVersion = '5.5.1'): string {
  const file = `jupyterhub-rest-api-${version}.yml`;
  const custom = process.env.LABHUB_OPENAPI_SPEC;
  return [
    custom && version === '5.5.1' ? custom : custom && resolve(dirname(custom), file),
    `/work/shared/contracts/${file}`,
    resolve(REPO, `../shared/contracts/${file}`),
  ].find((p): p is string => typeof p === 'string' && existsSync(p)) ?? `/work/shared/contracts/${file}`;
}


const specId = (version: SpecVersion) => `https://labhub.test/jupyterhub-rest-api-${version}.json`;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Adds `null` to every `type` and `enum` in a (deep-copied) document. */
export function nullTolerant<T>(doc: T): T {
  const walk = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const out: { [key: string]: Json } = {};
    for (const [key, value] of Object.entries(node)) out[key] = walk(value);
    const type = out.type;
    if (typeof type === 'string' && type !== 'null') out.type = [type, 'null'];
    else if (Array.isArray(type) && type.every((t) => typeof t === 'string') && !type.includes('null')) out.type = [...type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  };
  return walk(doc as Json) as T;
}

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

type Loaded = { spec: { paths: Record<string, Record<string, Operation>>; info: { version: string } }; ajv: InstanceType<typeof Ajv2020> };
const cached = new Map<SpecVersion, Loaded>();

function load(version: SpecVersion = '5.5.1'): Loaded {
  const hit = cached.get(version);
  if (hit) return hit;
  const spec = nullTolerant(parse(readFileSync(specPath(version), 'utf8')) as Loaded['spec']);
  // strict: false because OpenAPI adds keywords JSON Schema does not know (example, discriminator, ...).
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(spec as object, specId(version), undefined, false);
  const loaded = { spec, ajv };
  cached.set(version, loaded);
  return loaded;
}

export function specVersion(version: SpecVersion = '5.5.1'): string {
  return load(version).spec.info.version;
}

/** True when the spec documents this method on this path template (e.g. `/users/{name}`). */
export function hasOperation(method: string, pathTemplate: string, version: SpecVersion = '5.5.1'): boolean {
  return load(version).spec.paths[pathTemplate]?.[method.toLowerCase()] !== undefined;
}

const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');
const validators = new Map<string, ValidateFunction | null>();

/**
 * Errors of `body` against the spec's response schema for `method pathTemplate` answering `status`
 * (an empty list when it conforms). A status the spec does not document for the operation is an error;
 * a documented status without a JSON schema (204, activity's 200) accepts any body.
 * Throws when the operation itself is not in the spec: that is a mistake in the test, not in the hub.
 */
export function validateResponse(method: string, pathTemplate: string, status: number, body: unknown, version: SpecVersion = '5.5.1'): string[] {
  const { spec, ajv } = load(version);
  const operation = spec.paths[pathTemplate]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method.toUpperCase()} ${pathTemplate} is not in the JupyterHub ${spec.info.version} spec`);
  const key = `${version} ${method.toLowerCase()} ${pathTemplate} ${status}`;
  let validate = validators.get(key);
  if (validate === undefined) {
    const response = operation.responses?.[String(status)];
    if (!response) {
      const documented = Object.keys(operation.responses ?? {}).join(', ');
      return [`status ${status} is not documented for ${method.toUpperCase()} ${pathTemplate} (documented: ${documented})`];
    }
    const schema = response.content?.['application/json']?.schema;
    validate = schema === undefined
      ? null
      : ajv.compile({ $ref: `${specId(version)}#/${pointer('paths', pathTemplate, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}` });
    validators.set(key, validate);
  }
  if (validate === null || validate(body)) return [];
  return (validate.errors ?? []).map(formatError);
}

const componentValidators = new Map<string, ValidateFunction>();

/** Errors of `value` against `#/components/schemas/<name>` (e.g. `User`, `PaginatedList`), for shapes no single response documents. */
export function validateComponent(name: string, value: unknown, version: SpecVersion = '5.5.1'): string[] {
  const { ajv } = load(version);
  const key = `${version} ${name}`;
  let validate = componentValidators.get(key);
  if (!validate) {
    validate = ajv.compile({ $ref: `${specId(version)}#/${pointer('components', 'schemas', name)}` });
    componentValidators.set(key, validate);
  }
  return validate(value) ? [] : (validate.errors ?? []).map(formatError);
}

function formatError(e: ErrorObject): string {
  return `${e.instancePath || '(root)'} ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  /** Raw body text. */
  text: string;
  /** Parsed JSON body; null for an empty body; undefined when the body is not JSON. */
  body: unknown;
}

export interface ApiCallOptions {
  /** Sent as `Authorization: token <token>` unless `headers` has its own Authorization. */
  token?: string;
  /** An object is sent as JSON; a string or bytes are sent as-is (with `Content-Type: application/json` unless overridden). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Milliseconds before the request is abandoned (default 15 s): a hung hub fails one test, not the run. */
  timeoutMs?: number;
}

/**
 * One REST call under `<base>/hub/api`, with free headers (tests/helpers/hub.ts's `api()` only takes a token).
 * `path` may carry a query string.
 */
export async function apiCall(base: string, method: string, path: string, options: ApiCallOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `token ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, options.headers);
  const res = await fetch(`${base}/hub/api${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined
      : typeof options.body === 'string' || options.body instanceof Uint8Array ? options.body : JSON.stringify(options.body),
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}
