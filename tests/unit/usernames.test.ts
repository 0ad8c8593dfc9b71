import { describe, expect, it } from 'vitest';
import { USERNAME_MAX_LENGTH, escapeForPath, normalizeUsername, validateUsername } from '../../hub/auth/usernames.js';

const accept = (raw: string) => {
  const name = normalizeUsername(raw);
  return { name, error: validateUsername(name) };
};

describe('normalizeUsername', () => {
  it('lowercases', () => {
    expect(normalizeUsername('Alice')).toBe('alice');
    expect(normalizeUsername('ÉMILE')).toBe('émile');
  });

  it('folds compatibility forms onto one account (documented clash)', () => {
    // KELVIN SIGN U+212A: lowercases (as in JupyterHub) and NFKC-folds to "k", so "Kelvin" IS user "kelvin".
    expect(normalizeUsername('\u212Aelvin')).toBe('kelvin');
    expect(normalizeUsername('ａｌｉｃｅ')).toBe('alice');
    expect(normalizeUsername('ﬁona')).toBe('fiona');
    expect(normalizeUsername('e\u0301mile')).toBe('émile');
  });

  it('does not trim', () => {
    expect(normalizeUsername(' alice ')).toBe(' alice ');
  });

  it('is idempotent', () => {
    for (const raw of ['\u212Aelvin', 'İstanbul', 'ẞtraße', 'ǅemal', 'ΣΊΣΥΦΟΣ', 'ﬀ', 'Ⅻ', '①']) {
      const once = normalizeUsername(raw);
      expect(normalizeUsername(once)).toBe(once);
    }
  });
});

describe('validateUsername', () => {
  it.each(['alice', 'a', 'bob.smith', 'alice_2', 'o-neil', 'alice@example.org', 'alice+lab', '007', 'émile', 'δημήτρης', '张伟',
    'i̇stanbul'])('accepts %s', (name) => {
    expect(validateUsername(name)).toBeNull();
  });

  it.each([
    ['', 'empty'],
    ['a/b', "'/'"],
    ['..', "'.' or '..'"],
    ['.', "'.' or '..'"],
    ['.hidden', 'start with a letter or digit'],
    ['-rf', 'start with a letter or digit'],
    ['Alice', 'lowercase'],
    ['\u212Aelvin', 'lowercase'],
    ['ａｌｉｃｅ', 'NFKC'],
    [' alice', 'whitespace'],
    ['alice ', 'whitespace'],
    ['al ice', 'only letters'],
    ['al\u0000ice', 'control'],
    ['alice\n', 'control'],
    ['al\u202Eice', 'only letters'],
    ['al\u200Bice', 'only letters'],
    ['a\\b', 'only letters'],
    ['a?b', 'only letters'],
    ['a#b', 'only letters'],
    ['a%2fb', 'only letters'],
    ['a&b', 'only letters'],
    ["o'neil", 'only letters'],
    ['a"b', 'only letters'],
    ['a<b>', 'only letters'],
    ['a:b', 'only letters'],
  ])('rejects %j', (name, message) => {
    expect(validateUsername(name)).toContain(message);
  });

  it('caps length at 64 characters, counted in code points', () => {
    expect(validateUsername('a'.repeat(USERNAME_MAX_LENGTH))).toBeNull();
    expect(validateUsername('a'.repeat(USERNAME_MAX_LENGTH + 1))).toContain('at most 64');
    expect(validateUsername('a'.repeat(300))).toContain('at most 64');
    expect(validateUsername('𠀀'.repeat(USERNAME_MAX_LENGTH))).toBeNull(); // astral: 2 UTF-16 units each
    expect(validateUsername('𠀀'.repeat(USERNAME_MAX_LENGTH + 1))).toContain('at most 64');
    expect(validateUsername('a'.repeat(1_000_000))).toContain('at most 64');
  });

  it('normalize then validate: uppercase becomes the lowercase user; unsafe input stays refused', () => {
    expect(accept('ALICE')).toEqual({ name: 'alice', error: null });
    expect(accept('\u212Aelvin')).toEqual({ name: 'kelvin', error: null });
    expect(accept('a\u2215b').error).not.toBeNull(); // DIVISION SLASH is not folded to "/" but is still refused
    expect(accept('ａ／ｂ').error).toContain("'/'"); // fullwidth solidus folds to "/"
    expect(accept('ab\u00A0').error).toContain('whitespace'); // NBSP folds to a space
  });
});

describe('escapeForPath', () => {
  it('escapes like JupyterHub url_escape_path (quote with safe="@~")', () => {
    expect(escapeForPath('alice')).toBe('alice');
    expect(escapeForPath('alice@example.org')).toBe('alice@example.org');
    expect(escapeForPath('a+b')).toBe('a%2Bb');
    expect(escapeForPath('émile')).toBe('%C3%A9mile');
    expect(escapeForPath("a/b c!'()*~")).toBe('a%2Fb%20c%21%27%28%29%2A~');
  });
});
