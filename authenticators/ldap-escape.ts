import { Filter } from 'ldapts';

/**
 * RFC 4514 §2.4: escapes one attribute value for a DN string. Special characters get a backslash, a leading `#`
 * or space and a trailing space too, and NUL becomes `\00`, so a login name can never add or change an RDN.
 */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** Fills `{name}` placeholders of a filter template with RFC 4515-escaped values (`*`, `(`, `)`, `\`, NUL). */
export function fillFilter(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? Filter.escape(values[key]!) : whole));
}
