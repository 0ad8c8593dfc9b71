const SECRET_KEY = /TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH/i;

/**
 * The last lines of a server's output, with anything that looks like a secret removed: spawners put this text in
 * the error a user sees when their server fails to start. Values of secret-named variables of the server's
 * environment, `token=`/`password=`/`secret=` values and Authorization header values are replaced.
 */
export function redactedTail(text: string, env: Record<string, string>, maxLines = 20, maxChars = 2000): string {
  let tail = text.slice(-maxChars * 2);
  for (const [key, value] of Object.entries(env)) {
    if (SECRET_KEY.test(key) && value.length >= 4) tail = tail.split(value).join('[redacted]');
  }
  tail = tail.replace(/((?:token|password|secret)=)[^\s&"']+/gi, '$1[redacted]');
  tail = tail.replace(/(authorization:\s*\S+\s+)\S+/gi, '$1[redacted]');
  const lines = tail.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-maxLines).join('\n').slice(-maxChars);
}
