// The logger's levels: a line of a level no transport takes never enters winston's streams (the
// calls return at once), for the logger and its children, by whichever method it is logged; a
// level a transport takes is written as before.
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { createLogger } from '../../src/core/logger.js';

/** A logger as the context makes one, with its console transport swapped for a captured stream. */
function captured(verbose: boolean): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const log = createLogger({ verbose });
  const lines: string[] = [];
  const stream = new PassThrough({ objectMode: true });
  stream.on('data', (info: { message: string; level: string }) => lines.push(`${info.level} ${info.message}`));
  const format = log.transports[0]?.format;
  log.clear();
  log.add(new winston.transports.Stream({ stream, format }));
  return { log, lines };
}

describe('createLogger', () => {
  it('at info, debug lines never reach the stream, through debug(), log() or a child; info lines do', async () => {
    const { log, lines } = captured(false);
    const write = vi.spyOn(log, 'write');
    const child = log.child({ scope: 'step' });
    log.debug('hidden 1');
    log.log('debug', 'hidden 2');
    child.debug('hidden 3');
    expect(write).not.toHaveBeenCalled();
    log.info('shown 1');
    log.log('info', 'shown 2');
    child.warn('shown 3');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual(['info shown 1', 'info shown 2', 'warn shown 3']);
  });

  it('with --verbose, and once a level is turned on later, debug lines are written', async () => {
    const { log, lines } = captured(true);
    log.debug('one');
    log.child({ scope: 'x' }).log('debug', 'two');
    const quiet = captured(false);
    quiet.log.level = 'debug';
    quiet.log.debug('three');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual(['debug one', 'debug two']);
    expect(quiet.lines).toEqual(['debug three']);
  });
});
