// The winston logger every part of kinstall writes to: human lines on stderr, never stdout
// (stdout carries --json results and `inspect` output).
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  verbose: boolean;
  /** Silence everything but errors (tests and --json keep stderr readable). */
  quiet?: boolean;
}

type LevelCall = (this: Logger, ...args: unknown[]) => Logger;

/**
 * winston passes every call through its streams (a transform and a pipe per line) and only then
 * drops a level no transport takes: a run's ~50 debug lines cost milliseconds that way. Here a
 * disabled level returns at once, for the logger and its children (which inherit these methods);
 * the check is winston's own, against the levels in force at the call.
 */
function skipDisabledLevels(logger: Logger): Logger {
  const methods = logger as unknown as Record<string, LevelCall>;
  for (const level of Object.keys(logger.levels)) {
    const write = methods[level];
    if (typeof write !== 'function') continue;
    methods[level] = function (this: Logger, ...args: unknown[]) {
      return this.isLevelEnabled(level) ? write.apply(this, args) : this;
    };
  }
  const log = methods.log as LevelCall;
  methods.log = function (this: Logger, ...args: unknown[]) {
    const [level] = args;
    return typeof level === 'string' && level in this.levels && !this.isLevelEnabled(level) ? this : log.apply(this, args);
  };
  return logger;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const logger = winston.createLogger({
    level,
    transports: [
      new winston.transports.Console({
        stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
        format: winston.format.printf(({ level: lvl, message, scope }) => {
          const prefix = scope ? `[${String(scope)}] ` : '';
          const tag = lvl === 'info' ? '' : `${lvl}: `;
          return `kinstall: ${tag}${prefix}${String(message)}`;
        }),
      }),
    ],
  });
  return skipDisabledLevels(logger);
}
