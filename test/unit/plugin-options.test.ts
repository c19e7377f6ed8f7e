// pluginOptions(): a plugin's section of the config file, typed by its option schema.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { KinstallError, pluginOptions, type Context, type OptionSchema } from '../../src/core/plugin-api.js';
import { testContext } from '../helpers/context.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

const grubSchema = { cfg: 'string', mkconfig: 'string' } as const satisfies OptionSchema;
const efistubSchema = { part: 'number', bootOrderFirst: 'boolean', disk: 'string' } as const satisfies OptionSchema;

async function contextWith(config: Record<string, unknown>): Promise<Context> {
  root = newRoot({ config });
  return testContext(root.root);
}

/** The same context with a plugin section that bypassed the settings' validation. */
const withSection = (ctx: Context, name: string, section: Record<string, unknown>): Pick<Context, 'settings'> => ({
  settings: { ...ctx.settings, pluginOptions: { ...ctx.settings.pluginOptions, [name]: section } },
});

describe('pluginOptions', () => {
  it('returns the values of the config file section, typed by the schema', async () => {
    const ctx = await contextWith({ grub: { cfg: '/boot/grub2/grub.cfg' }, efistub: { part: 2, bootOrderFirst: false } });
    const grub = pluginOptions(ctx, 'grub', grubSchema);
    expect(grub).toEqual({ cfg: '/boot/grub2/grub.cfg' });
    expect(grub.mkconfig).toBeUndefined();
    const efistub = pluginOptions(ctx, 'efistub', efistubSchema);
    expect(efistub).toEqual({ part: 2, bootOrderFirst: false });
    expectTypeOf(grub.cfg).toEqualTypeOf<string | undefined>();
    expectTypeOf(efistub.part).toEqualTypeOf<number | undefined>();
    expectTypeOf(efistub.bootOrderFirst).toEqualTypeOf<boolean | undefined>();
  });

  it('string[] options keep their strings; the dracut section the test roots write comes back whole', async () => {
    const ctx = await contextWith({});
    const dracut = pluginOptions(ctx, 'dracut', { args: 'string[]', hostonly: 'boolean' });
    expect(dracut.args).toEqual(expect.arrayContaining(['-m', 'base']));
    expect(dracut.hostonly).toBeUndefined();
    expectTypeOf(dracut.args).toEqualTypeOf<readonly string[] | undefined>();
  });

  it('a plugin without a section gets an empty, frozen object', async () => {
    const ctx = await contextWith({});
    const values = pluginOptions(ctx, 'lilo', { command: 'string' });
    expect(values).toEqual({});
    expect(Object.isFrozen(values)).toBe(true);
  });

  it('only the keys the schema names are returned', async () => {
    const ctx = await contextWith({ efistub: { part: 2, disk: '/dev/vda', vendor: 'Gentoo' } });
    expect(pluginOptions(ctx, 'efistub', { part: 'number' })).toEqual({ part: 2 });
  });

  it('a value of another type than the schema says is refused with ECONFIG, not cast', async () => {
    const ctx = await contextWith({});
    const thrown = (section: Record<string, unknown>, schema: OptionSchema) => {
      try {
        pluginOptions(withSection(ctx, 'x', section), 'x', schema);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const wrongNumber = thrown({ part: '2' }, { part: 'number' });
    expect(wrongNumber).toBeInstanceOf(KinstallError);
    expect((wrongNumber as KinstallError).code).toBe('ECONFIG');
    expect((wrongNumber as KinstallError).message).toBe('invalid configuration: "x.part" must be a number');
    expect((thrown({ args: ['--force', 3] }, { args: 'string[]' }) as KinstallError).message).toBe(
      'invalid configuration: "x.args" must be a string[]',
    );
    expect((thrown({ on: 'yes' }, { on: 'boolean' }) as KinstallError).code).toBe('ECONFIG');
    expect(thrown({ args: ['--force'] }, { args: 'string[]' })).toBeUndefined();
  });
});
