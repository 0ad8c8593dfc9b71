/**
 * MQTT topic filters compared as sets of topics (MQTT 3.1.1 §4.7): `+` matches one level, `#` (last) matches the
 * parent level and every level below it. Placeholders such as `{user}` are ordinary literal levels here.
 */

const levels = (filter: string) => filter.split('/');

/** Whether every topic `inner` matches is matched by `outer`: a grant of `inner` is within a ceiling of `outer`. */
export function filterCovers(outer: string, inner: string): boolean {
  const o = levels(outer);
  const i = levels(inner);
  for (let k = 0; k < i.length; k++) {
    const ol = o[k];
    const il = i[k]!;
    if (ol === '#') return true;
    if (ol === undefined) return false;
    if (il === '#') return false;
    if (ol === '+') continue;
    if (il === '+' || il !== ol) return false;
  }
  // `a/#` also matches `a`; anything else longer than `inner` does not match what ends at `inner`'s last level.
  return o.length === i.length || (o.length === i.length + 1 && o[i.length] === '#');
}

/** Whether some topic matches both filters: a grant of `a` reaches what `b` names. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = levels(a);
  const y = levels(b);
  for (let k = 0; k < Math.max(x.length, y.length); k++) {
    const xl = x[k];
    const yl = y[k];
    if (xl === '#' || yl === '#') return true;
    // One filter ended while the other goes on with something other than `#`: no topic matches both.
    if (xl === undefined || yl === undefined) return false;
    if (xl !== '+' && yl !== '+' && xl !== yl) return false;
  }
  return true;
}
