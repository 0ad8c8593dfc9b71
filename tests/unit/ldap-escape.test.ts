import { describe, expect, it } from 'vitest';
import { escapeDnValue, fillFilter } from '../../authenticators/ldap-escape.js';

describe('LDAP escaping', () => {
  it('escapes DN values per RFC 4514', () => {
    expect(escapeDnValue('alice')).toBe('alice');
    expect(escapeDnValue('a,ou=admins')).toBe('a\\,ou\\=admins');
    expect(escapeDnValue('a+cn=x')).toBe('a\\+cn\\=x');
    expect(escapeDnValue('"<x>;\\')).toBe('\\"\\<x\\>\\;\\\\');
    expect(escapeDnValue('#lead')).toBe('\\#lead');
    expect(escapeDnValue(' lead')).toBe('\\ lead');
    expect(escapeDnValue('trail ')).toBe('trail\\ ');
    expect(escapeDnValue('nul\0')).toBe('nul\\00');
  });

  it('escapes filter values per RFC 4515 and leaves unknown placeholders', () => {
    expect(fillFilter('(uid={u})', { u: '*' })).toBe('(uid=\\2a)');
    expect(fillFilter('(uid={u})', { u: 'al*' })).toBe('(uid=al\\2a)');
    expect(fillFilter('(uid={u})', { u: 'alice)(uid=*' })).toBe('(uid=alice\\29\\28uid=\\2a)');
    expect(fillFilter('(uid={u})', { u: 'a\\b\0' })).toBe('(uid=a\\5cb\\00)');
    expect(fillFilter('(|(member={dn})(memberUid={username}))', { dn: 'uid=a,dc=x', username: 'a' })).toBe('(|(member=uid=a,dc=x)(memberUid=a))');
    expect(fillFilter('(x={other})', {})).toBe('(x={other})');
  });
});
