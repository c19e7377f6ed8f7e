// The registry of built-in plugins, handed to the core by the CLI. A new layout is a folder in
// plugins/ plus one line here. Layouts are asked in this order for layout=auto; the fallback is the
// layout that declares itself one (compat), wherever it stands.
import type { PluginRegistry } from '../src/core/plugin-api.js';
import { dracutGenerator } from './initramfs-dracut/index.js';
import { noInitramfs } from './initramfs-none/index.js';
import { compatLayout } from './layout-compat/index.js';
import { grubLayout } from './layout-grub/index.js';
import { efistubLayout } from './layout-efistub/index.js';
import { liloLayout } from './layout-lilo/index.js';
import { blsLayout } from './layout-bls/index.js';
import { ukiLayout } from './layout-uki/index.js';

export function builtinPlugins(): PluginRegistry {
  return {
    layouts: [ukiLayout, blsLayout, liloLayout, grubLayout, compatLayout, efistubLayout],
    generators: [dracutGenerator, noInitramfs],
  };
}
