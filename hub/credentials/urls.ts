/** A URL without its user and password: what servers are told by default, and what may appear in logs. */
export function withoutCredentials(raw: string): string {
  const url = new URL(raw);
  url.username = '';
  url.password = '';
  return url.toString();
}

/** The service's address for servers with a lease's account in it (the generated password needs no escaping). */
export function withAccount(connectUrl: string, account: string, password: string): URL {
  const url = new URL(connectUrl);
  url.username = account;
  url.password = password;
  return url;
}

/** The three variables every service delivers: LABHUB_<SERVICE>_URL, _USERNAME and _PASSWORD. */
export function accountVariables(service: 'MQTT' | 'POSTGRES' | 'MONGODB', url: string, account: string, password: string): Record<string, string> {
  return { [`LABHUB_${service}_URL`]: url, [`LABHUB_${service}_USERNAME`]: account, [`LABHUB_${service}_PASSWORD`]: password };
}
