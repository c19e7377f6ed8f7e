// The winston logger every part of kinstall writes to: human lines on stderr, never stdout
// (stdout carries --json results and `inspect` output).
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  verbose: boolean;
  /** Silence everything but errors (tests and --json keep stderr readable). */
  quiet?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  return winston.createLogger({
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
}
