import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
const REDACT = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
  'client_secret', '*.client_secret', 'api_token', '*.api_token', 'secret', '*.secret',
];

export interface LogOptions {
  level?: string;
  /** Pretty single-line text instead of JSON; default: when stderr is a terminal. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(name: string, options: LogOptions = {}): Logger {
  const pretty = options.pretty ?? Boolean(process.stderr.isTTY);
  const base: LoggerOptions = {
    name,
    level: options.level ?? process.env.LABHUB_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) return pino(base, humanStream(options.destination ?? process.stderr));
  return pino(base, (options.destination ?? process.stderr) as DestinationStream);
}

/** A terminal-friendly line format with no extra dependency: `time level name: msg {extra}`. */
function humanStream(out: NodeJS.WritableStream): DestinationStream {
  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
  return {
    write(line: string) {
      try {
        const { time, level, name, msg, pid: _pid, hostname: _host, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
        out.write(`${String(time).slice(11, 23)} ${levels[level as number] ?? level} ${name}: ${msg ?? ''}${extra}\n`);
      } catch {
        out.write(line);
      }
    },
  };
}

/** Usernames from unauthenticated requests are attacker-chosen: log a bounded prefix only. */
export function boundedName(name: unknown, max = 32): string {
  const s = typeof name === 'string' ? name : String(name);
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}
