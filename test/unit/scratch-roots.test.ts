// useScratchRoots (test/helpers/root.ts): every root it makes or adopts is gone after the test (or
// after the suite), and what must end first runs while the roots are still there.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeRoot, useScratchRoots } from '../helpers/root.js';

describe('useScratchRoots', () => {
  describe('after each test', () => {
    const made: string[] = [];
    /** For each run of `first`: were the roots made so far all still there? */
    const firstSaw: boolean[] = [];
    const newRoot = useScratchRoots({ first: () => firstSaw.push(made.every((dir) => existsSync(dir))) });

    it('makes roots and adopts roots made elsewhere', () => {
      const r = newRoot({ config: false });
      const adopted = makeRoot();
      expect(newRoot.adopt(adopted)).toBe(adopted);
      made.push(r.root, adopted.root);
      expect(existsSync(r.boot)).toBe(true);
      expect(existsSync(r.at('/etc/kinstall/config.json'))).toBe(false);
      expect(existsSync(adopted.at('/etc/kinstall/config.json'))).toBe(true);
    });

    it('removed both once the test was over, after running first while they were there', () => {
      expect(made).toHaveLength(2);
      for (const dir of made) expect(existsSync(dir), dir).toBe(false);
      expect(firstSaw).toEqual([true]);
    });
  });

  let kept = '';
  describe('after all the tests of the suite', () => {
    const roots = useScratchRoots({ after: 'all' });

    it('makes a root', () => {
      kept = roots().root;
      expect(existsSync(kept)).toBe(true);
    });

    it('keeps it for the next test of the suite', () => {
      expect(existsSync(kept)).toBe(true);
    });
  });

  it("removed the suite's root once the suite was over", () => {
    expect(kept).not.toBe('');
    expect(existsSync(kept)).toBe(false);
  });
});
