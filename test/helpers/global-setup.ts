// Before any test: the CLI is built (tests spawn dist/) and the real test kernel is cached.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export default function setup(): void {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: top, stdio: 'inherit' });
  const cache = execFileSync(path.join(top, 'scripts/fetch-test-kernel.sh'), { encoding: 'utf8' }).trim();
  process.env.KINSTALL_TEST_KERNEL = cache;
}
