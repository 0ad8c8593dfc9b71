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
import { resolve } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { REPO } from './hub.js';

// ajv and ajv-formats are CommonJS: under NodeNext the default import is `module.exports`, whose `.default` is the export.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

/** Where the contract lives: the shared contracts directory, or a copy named by LABHUB_OPENAPI_SPEC. */
export const SPEC_PATH = [
  process.env.LABHUB_OPENAPI_SPEC,
  '/work/shared/contracts/jupyterhub-rest-api-5.5.1.yml',
  resolve(REPO, '../shared/contracts/jupyterhub-rest-api-5.5.1.yml'),
].find((p): p is string => p !== undefined && existsSync(p)) ?? '/work/shared/contracts/jupyterhub-rest-api-5.5.1.yml';

const SPEC_ID = 'https://labhub.test/jupyterhub-rest-api-5.5.1.json';

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

let cached: { spec: { paths: Record<string, Record<string, Operation>>; info: { version: string } }; ajv: InstanceType<typeof Ajv2020> } | undefined;

function load() {
  if (cached) return cached;
  const spec = nullTolerant(parse(readFileSync(SPEC_PATH, 'utf8')) as { paths: Record<string, Record<string, Operation>>; info: { version: string } });
  // strict: false because OpenAPI adds keywords JSON Schema does not know (example, discriminator, ...).
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(spec as object, SPEC_ID, undefined, false);
  cached = { spec, ajv };
  return cached;
}

export function specVersion(): string {
  return load().spec.info.version;
}

/** True when the spec documents this method on this path template (e.g. `/users/{name}`). */
export function hasOperation(method: string, pathTemplate: string): boolean {
  return load().spec.paths[pathTemplate]?.[method.toLowerCase()] !== undefined;
}

const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');
const validators = new Map<string, ValidateFunction | null>();

/**
 * Errors of `body` against the spec's response schema for `method pathTemplate` answering `status`
 * (an empty list when it conforms). A status the spec does not document for the operation is an error;
 * a documented status without a JSON schema (204, activity's 200) accepts any body.
 * Throws when the operation itself is not in the spec: that is a mistake in the test, not in the hub.
 */
export function validateResponse(method: string, pathTemplate: string, status: number, body: unknown): string[] {
  const { spec, ajv } = load();
  const operation = spec.paths[pathTemplate]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method.toUpperCase()} ${pathTemplate} is not in the JupyterHub ${spec.info.version} spec`);
  const key = `${method.toLowerCase()} ${pathTemplate} ${status}`;
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
      : ajv.compile({ $ref: `${SPEC_ID}#/${pointer('paths', pathTemplate, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}` });
    validators.set(key, validate);
  }
  if (validate === null || validate(body)) return [];
  return (validate.errors ?? []).map(formatError);
}

const componentValidators = new Map<string, ValidateFunction>();

/** Errors of `value` against `#/components/schemas/<name>` (e.g. `User`, `PaginatedList`), for shapes no single response documents. */
export function validateComponent(name: string, value: unknown): string[] {
  const { ajv } = load();
  let validate = componentValidators.get(name);
  if (!validate) {
    validate = ajv.compile({ $ref: `${SPEC_ID}#/${pointer('components', 'schemas', name)}` });
    componentValidators.set(name, validate);
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
