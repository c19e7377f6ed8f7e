// The compat layout: the compat file set in the boot dir and nothing else to activate; a boot loader
// configured by hand boots the version-less links. The layout=auto fallback.
import type { Layout } from '../../src/core/plugin-api.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../shared/compat-files.js';

export const compatLayout: Layout = {
  name: 'compat',
  fallback: true,
  plan: planCompatFiles,
  planRemove: planCompatRemove,
  list: (ctx) => listCompatKernels(ctx, 'compat'),
  preflight: compatPreflight,
  noTrialReason:
    'there is no boot loader to steer: whatever boots the vmlinuz link boots the new kernel every time, with nothing to fall back to by itself',
};
