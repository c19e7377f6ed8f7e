// The kernel config reader: set, module, unset, string and numeric values; absent options read as n.
import { describe, expect, it } from 'vitest';
import { configValue, parseKernelConfig } from '../../src/core/system/kernel-config.js';

describe('parseKernelConfig', () => {
  const text = [
    '#',
    '# Automatically generated file; DO NOT EDIT.',
    'CONFIG_EXT4_FS=y',
    'CONFIG_BLK_DEV_LOOP=m',
    '# CONFIG_XFS_FS is not set',
    'CONFIG_LOCALVERSION="-test"',
    'CONFIG_LOG_BUF_SHIFT=17',
    'CONFIG_UEVENT_HELPER_PATH=""',
    '  CONFIG_INDENTED=y  ',
    'not a config line',
  ].join('\n');
  const values = parseKernelConfig(text);

  it('reads y, m, strings without their quotes and numbers', () => {
    expect(values.get('EXT4_FS')).toBe('y');
    expect(values.get('BLK_DEV_LOOP')).toBe('m');
    expect(values.get('LOCALVERSION')).toBe('-test');
    expect(values.get('LOG_BUF_SHIFT')).toBe('17');
    expect(values.get('UEVENT_HELPER_PATH')).toBe('');
    expect(values.get('INDENTED')).toBe('y');
  });

  it('reads "is not set" as n, and an absent option as n through configValue', () => {
    expect(values.get('XFS_FS')).toBe('n');
    const config = { file: '.config', values };
    expect(configValue(config, 'XFS_FS')).toBe('n');
    expect(configValue(config, 'BTRFS_FS')).toBe('n');
    expect(configValue(config, 'EXT4_FS')).toBe('y');
    expect([...values.keys()].sort()).toEqual([
      'BLK_DEV_LOOP',
      'EXT4_FS',
      'INDENTED',
      'LOCALVERSION',
      'LOG_BUF_SHIFT',
      'UEVENT_HELPER_PATH',
      'XFS_FS',
    ]);
  });
});
