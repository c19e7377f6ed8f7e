// Before any test: the CLI is built (tests spawn dist/), the real test kernel is cached, and the
// kernel built from source (scripts/build-test-kernel.sh: its make O= tree) is cached too.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export default function setup(): void {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: top, stdio: 'inherit' });
  const cache = execFileSync(path.join(top, 'scripts/fetch-test-kernel.sh'), { encoding: 'utf8' }).trim();
  process.env.KINSTALL_TEST_KERNEL = cache;
  // Cached after the first run; a brand-new machine builds it here (niced: about 10 minutes on two cores).
  const kbuild = execFileSync('nice', ['-n', '19', path.join(top, 'scripts/build-test-kernel.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  process.env.KINSTALL_TEST_KBUILD = kbuild;
}
