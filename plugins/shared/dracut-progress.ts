// dracut's progress while it runs (it takes seconds to minutes): on a terminal one line, redrawn in
// place, with the elapsed time and dracut's latest line; elsewhere (a pipe, a log, --json) plain
// lines through the logger, a start and an end with the time it took.
import type { Context } from '../../src/core/plugin-api.js';

export interface Progress {
  /** Each line dracut prints. */
  onLine: (line: string) => void;
  /** Clears the redrawn line and logs the elapsed time. */
  done: (outcome: 'done' | 'failed') => void;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

export function dracutProgress(ctx: Context, what: string): Progress {
  const started = Date.now();
  ctx.log.info(`generating the initramfs with dracut (${what})`);
  // The terminal's own stream: the logger (winston) writes to the same one, a whole line at a time.
  const terminal = ctx.request.progress === true && !ctx.request.verbose ? process.stderr : undefined;
  let latest = '';
  const draw = () => {
    const width = Math.max(20, (terminal?.columns || 80) - 1);
    terminal?.write(`\r\x1b[K${`kinstall: dracut [${seconds(started)}] ${latest}`.slice(0, width)}`);
  };
  const timer = terminal ? setInterval(draw, 1000) : undefined;
  timer?.unref();
  return {
    onLine(line) {
      latest = line.replace(/^dracut(\[[A-Z]\])?:\s*/, '').trim();
      if (terminal) draw();
    },
    done(outcome) {
      clearInterval(timer);
      terminal?.write('\r\x1b[K');
      ctx.log.info(outcome === 'done' ? `initramfs generated in ${seconds(started)}` : `dracut failed after ${seconds(started)}`);
    },
  };
}
