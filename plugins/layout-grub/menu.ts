// The boot menu a grub.cfg describes, as GRUB selects from it: menu entries and submenus with their
// titles and ids, the kernel version each entry boots, and what `default`, `saved_entry` and
// `next_entry` values (an index, an id or a title, `SUBMENU>ENTRY` inside a submenu) select.

export interface MenuItem {
  title: string;
  id?: string;
  /** The version of the kernel a menu entry boots (from its `linux` line); absent for a submenu. */
  version?: string;
  /** A recovery (single-user) entry: never a trial's or a fallback's entry. */
  recovery: boolean;
  /** A submenu's items. */
  items?: MenuItem[];
}

/** The words of a grub.cfg command line, with '…' and "…" quoting and backslash escapes as GRUB reads them. */
function words(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      word = (word ?? '') + line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
    } else if (c === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[i + 1];
      i += 1;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) out.push(word);
  return out;
}

/** A `menuentry`/`submenu` line's title (its first word) and id (`$menuentry_id_option ID` or `--id ID`). */
function describe(line: string): Pick<MenuItem, 'title' | 'id'> {
  const w = words(line.replace(/\{\s*$/, ''));
  const idAt = w.findIndex((x) => x === '$menuentry_id_option' || x === '--id');
  return { title: w[1] ?? '', ...(idAt > 0 && w[idAt + 1] ? { id: w[idAt + 1] } : {}) };
}

/** The version in an image path, as grub-mkconfig's 10_linux takes it (`vmlinuz-6.1.0` → `6.1.0`). */
const versionOfImage = (image: string) => (image.split('/').pop() ?? '').replace(/^[^0-9]*-/, '');

/** The menu of a grub.cfg: top-level items, submenus holding theirs. */
export function parseGrubMenu(cfg: string): MenuItem[] {
  const top: MenuItem[] = [];
  // Open blocks: a menu item, or null for another `{` block (a function) whose `}` closes nothing of ours.
  const open: Array<MenuItem | null> = [];
  const innermostItem = () => [...open].reverse().find((b): b is MenuItem => b !== null);
  for (const raw of cfg.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const kind = /^(menuentry|submenu)\s/.exec(line)?.[1];
    if (kind) {
      const item: MenuItem = { ...describe(line), recovery: false, ...(kind === 'submenu' ? { items: [] } : {}) };
      item.recovery = /recovery/i.test(`${item.title} ${item.id ?? ''}`);
      (innermostItem()?.items ?? top).push(item);
      open.push(item);
    } else if (line === '}') {
      open.pop();
    } else if (/\{$/.test(line)) {
      open.push(null);
    } else {
      const linux = /^linux(?:16|efi)?\s+(\S+)(.*)$/.exec(line);
      const entry = innermostItem();
      if (linux && entry && !entry.items && entry.version === undefined) {
        entry.version = versionOfImage(linux[1] as string);
        if (/(^|\s)(single|recovery|emergency)(\s|$)/.test(linux[2] ?? '')) entry.recovery = true;
      }
    }
  }
  return top;
}

/** A selector part for an item: its id when it has one, else its title (GRUB accepts both). */
const nameOf = (item: MenuItem) => item.id ?? item.title;

/**
 * The `default`/`next_entry` value that boots `version`'s own entry: its versioned id
 * (`gnulinux-VER-advanced-UUID`) rather than the newest kernel's version-less `gnulinux-simple-…`,
 * prefixed with its submenu's (`SUBMENU>ENTRY`); never a recovery entry. Undefined when none boots it.
 */
export function entryFor(menu: MenuItem[], version: string): string | undefined {
  const found: Array<{ path: string; item: MenuItem }> = [];
  const walk = (items: MenuItem[], prefix: string) => {
    for (const item of items) {
      if (item.items) walk(item.items, `${prefix}${nameOf(item)}>`);
      else if (item.version === version && !item.recovery) found.push({ path: `${prefix}${nameOf(item)}`, item });
    }
  };
  walk(menu, '');
  const named = found.find((f) => f.item.id?.includes(`-${version}-`));
  return (named ?? found[0])?.path;
}

/** The menu entry a `default`-style value selects; an empty value selects the first entry, as GRUB does. */
export function selectEntry(menu: MenuItem[], value: string | undefined): MenuItem | undefined {
  let items = menu;
  let selected: MenuItem | undefined;
  for (const part of (value || '0').split('>')) {
    selected = /^\d+$/.test(part) ? items[Number(part)] : items.find((i) => i.id === part || i.title === part);
    if (!selected) return undefined;
    items = selected.items ?? [];
  }
  return selected?.items ? undefined : selected;
}

/** The kernel version a `default`-style value boots. */
export const versionSelectedBy = (menu: MenuItem[], value: string | undefined) => selectEntry(menu, value)?.version;

/** Every kernel version the menu boots. */
export function menuVersions(menu: MenuItem[]): string[] {
  return menu.flatMap((item) => (item.items ? menuVersions(item.items) : item.version ? [item.version] : []));
}

/**
 * The `default` a grub.cfg boots when no next_entry is set: the value of its last `set default=`
 * other than `${next_entry}` (00_header writes GRUB_DEFAULT there, `${saved_entry}` for saved);
 * `${saved_entry}` is replaced by grubenv's. An empty result selects the first entry.
 */
export function defaultSelector(cfg: string, savedEntry: string | undefined): { value: string; usesSavedEntry: boolean } {
  const values = [...cfg.matchAll(/^\s*set\s+default=(?:"([^"]*)"|'([^']*)'|(\S*))\s*$/gm)]
    .map((m) => m[1] ?? m[2] ?? m[3] ?? '')
    .filter((v) => v !== '${next_entry}');
  const value = values.at(-1) ?? '0';
  const usesSavedEntry = value === '${saved_entry}';
  return { value: usesSavedEntry ? (savedEntry ?? '') : value, usesSavedEntry };
}
