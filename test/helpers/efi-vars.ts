// OVMF's variable store (an *_VARS*.fd file) read and written by tests, so the firmware itself sees
// Boot####, BootOrder and BootNext across reboots: efibootmgr needs efivarfs and stays a fake, and
// this is the bridge between the fake's JSON state and the file the firmware boots with.
//
// The format, as EDK2's MdeModulePkg/Include/Guid/VariableFormat.h documents it: a firmware volume
// header (HeaderLength at 48), a VARIABLE_STORE_HEADER (signature GUID, u32 Size counted from the
// store header, Format 0x5A, State 0xFE), then variable records from the first 4-byte boundary:
// StartId 0x55AA, State, Attributes, [MonotonicCount, TimeStamp, PubKeyIndex: authenticated stores
// only], NameSize, DataSize, VendorGuid, the UCS-2 name, the data; the next record at the next 4-byte
// boundary; free space is 0xFF. A record is live in state VAR_ADDED (0x3F), or 0x3E (added, in deleted
// transition) when no VAR_ADDED record of the same name follows; deleting clears bit 1 (State &= 0xFD).
//
//   setVariable(vars, { name: 'BootNext', guid: EFI_GLOBAL_VARIABLE, attributes: NV_BS_RT, data: u16(2) });
//   writeFakeStateToVars(JSON.parse(readFileSync(fakeState, 'utf8')), vars);   // before the boot
//   const state = readVarsToFakeState(vars);                                   // after it
import { readFileSync, writeFileSync } from 'node:fs';

export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
/** EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, what Boot#### and BootOrder carry. */
export const NV_BS_RT = 7;

export interface EfiVariable {
  name: string;
  guid: string;
  attributes: number;
  data: Buffer;
}

const AUTHENTICATED_STORE = 'aaf32c78-947b-439a-a180-2e144ec37792';
const PLAIN_STORE = 'ddcf3616-3275-4164-98b6-fe85707ffe7d';
const START_ID = 0x55aa;
const VAR_ADDED = 0x3f;
const VAR_IN_DELETED_TRANSITION_ADDED = 0x3e;
const VAR_DELETED = 0xfd;
const align4 = (n: number) => (n + 3) & ~3;

/** A GUID's 16 bytes: the first three fields little-endian, the last two as written. */
export function guidBytes(guid: string): Buffer {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(guid);
  if (!m) throw new Error(`not a GUID: ${guid}`);
  const le = (hex: string) => Buffer.from(hex, 'hex').reverse();
  return Buffer.concat([le(m[1]!), le(m[2]!), le(m[3]!), Buffer.from(m[4]! + m[5]!, 'hex')]);
}

export function guidString(bytes: Buffer): string {
  const le = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).reverse().toString('hex');
  const be = (from: number, to: number) => bytes.subarray(from, to).toString('hex');
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${be(8, 10)}-${be(10, 16)}`;
}

interface StoredRecord extends EfiVariable {
  offset: number;
  state: number;
}

/** The store inside a vars file: where records start and end, the header layout, the records. */
interface Store {
  file: string;
  bytes: Buffer;
  /** Offsets inside a record header: authenticated stores carry 28 more bytes before NameSize. */
  nameSizeAt: number;
  headerSize: number;
  end: number;
  free: number;
  records: StoredRecord[];
}

function openStore(file: string): Store {
  const bytes = readFileSync(file);
  if (bytes.toString('latin1', 40, 44) !== '_FVH') throw new Error(`${file}: no firmware volume header (_FVH)`);
  const storeAt = bytes.readUInt16LE(48);
  const signature = guidString(bytes.subarray(storeAt, storeAt + 16));
  const authenticated = signature === AUTHENTICATED_STORE;
  if (!authenticated && signature !== PLAIN_STORE) throw new Error(`${file}: unknown variable store ${signature}`);
  if (bytes[storeAt + 20] !== 0x5a || bytes[storeAt + 21] !== 0xfe) throw new Error(`${file}: store not formatted and healthy`);
  const end = storeAt + bytes.readUInt32LE(storeAt + 16);
  if (end > bytes.length) throw new Error(`${file}: store size ${end - storeAt} runs past the file`);
  const nameSizeAt = authenticated ? 36 : 8;
  const store: Store = { file, bytes, nameSizeAt, headerSize: nameSizeAt + 24, end, free: 0, records: [] };
  let at = align4(storeAt + 28);
  while (at + store.headerSize <= end && bytes.readUInt16LE(at) === START_ID) {
    const nameSize = bytes.readUInt32LE(at + nameSizeAt);
    const dataSize = bytes.readUInt32LE(at + nameSizeAt + 4);
    const nameAt = at + store.headerSize;
    const next = align4(nameAt + nameSize + dataSize);
    if (next > end) throw new Error(`${file}: the record at ${at} runs past the store`);
    store.records.push({
      offset: at,
      state: bytes[at + 2]!,
      attributes: bytes.readUInt32LE(at + 4),
      guid: guidString(bytes.subarray(at + nameSizeAt + 8, at + nameSizeAt + 24)),
      name: bytes.toString('utf16le', nameAt, nameAt + nameSize).replace(/\0+$/, ''),
      data: Buffer.from(bytes.subarray(nameAt + nameSize, nameAt + nameSize + dataSize)),
    });
    at = next;
  }
  store.free = at;
  return store;
}

const sameVariable = (a: { name: string; guid: string }, b: { name: string; guid: string }) =>
  a.name === b.name && a.guid.toLowerCase() === b.guid.toLowerCase();

function liveRecords(store: Store): StoredRecord[] {
  return store.records.filter(
    (r) =>
      r.state === VAR_ADDED ||
      (r.state === VAR_IN_DELETED_TRANSITION_ADDED &&
        !store.records.some((other) => other.state === VAR_ADDED && sameVariable(other, r))),
  );
}

/** The live variables, in store order. */
export function readVariables(file: string): EfiVariable[] {
  return liveRecords(openStore(file)).map(({ name, guid, attributes, data }) => ({ name, guid, attributes, data }));
}

/** One live variable's data, or undefined. */
export function readVariable(file: string, name: string, guid = EFI_GLOBAL_VARIABLE): Buffer | undefined {
  return readVariables(file).find((v) => sameVariable(v, { name, guid }))?.data;
}

function markDeleted(store: Store, variable: { name: string; guid: string }): boolean {
  const live = liveRecords(store).filter((r) => sameVariable(r, variable));
  for (const record of live) {
    record.state &= VAR_DELETED;
    store.bytes[record.offset + 2] = record.state;
  }
  return live.length > 0;
}

/** As the firmware's SetVariable does on flash: the new record into the free space, the live one deleted. */
function setIn(store: Store, variable: EfiVariable): void {
  if (variable.data.length === 0) throw new Error(`${variable.name}: empty data deletes in UEFI; call deleteVariable`);
  const name = Buffer.from(`${variable.name}\0`, 'utf16le');
  const record = Buffer.alloc(align4(store.headerSize + name.length + variable.data.length), 0xff);
  record.fill(0, 0, store.headerSize);
  record.writeUInt16LE(START_ID, 0);
  record[2] = VAR_ADDED;
  record.writeUInt32LE(variable.attributes, 4);
  record.writeUInt32LE(name.length, store.nameSizeAt);
  record.writeUInt32LE(variable.data.length, store.nameSizeAt + 4);
  guidBytes(variable.guid).copy(record, store.nameSizeAt + 8);
  name.copy(record, store.headerSize);
  variable.data.copy(record, store.headerSize + name.length);
  const room = store.end - store.free;
  if (record.length > room)
    throw new Error(`${store.file}: variable store full: ${variable.name} needs ${record.length} bytes, ${room} free`);
  markDeleted(store, variable);
  record.copy(store.bytes, store.free);
  store.records.push({ ...variable, data: Buffer.from(variable.data), offset: store.free, state: VAR_ADDED });
  store.free += record.length;
}

/** Changes a vars file in memory and writes it once, only when every change fit. */
function updateStore<T>(file: string, change: (store: Store) => T): T {
  const store = openStore(file);
  const result = change(store);
  writeFileSync(file, store.bytes);
  return result;
}

/** Sets a variable (a new record, the old one marked deleted); a full store throws and changes nothing. */
export function setVariable(file: string, variable: EfiVariable): void {
  updateStore(file, (store) => setIn(store, variable));
}

/** Marks the live variable deleted; false when there was none. */
export function deleteVariable(file: string, name: string, guid = EFI_GLOBAL_VARIABLE): boolean {
  return updateStore(file, (store) => markDeleted(store, { name, guid }));
}

// Boot#### (EFI_LOAD_OPTION), BootOrder and BootNext.

const LOAD_OPTION_ACTIVE = 1;
const MEDIA = 4;
const MEDIA_FILEPATH = 4;
const END_OF_PATH = Buffer.from([0x7f, 0xff, 0x04, 0x00]);

/** What a kinstall-made entry says: efibootmgr's --label, --loader and --unicode. */
export interface LoadOption {
  label: string;
  /** The EFI path, `\`-separated (\EFI\Gentoo\vmlinuz-6.1.efi); undefined when no file-path node. */
  loader?: string;
  /** The optional data as UCS-2 text: the kernel's command line. */
  args: string;
  /** LOAD_OPTION_ACTIVE; true unless said otherwise. */
  active?: boolean;
}

export interface DecodedLoadOption extends Required<Omit<LoadOption, 'loader'>> {
  loader?: string;
  /** The device path's nodes as `type/subtype`, e.g. ['4/4', '127/255'] or OVMF's ['4/7', '4/6', '127/255']. */
  nodes: string[];
  optionalData: Buffer;
}

/**
 * The load option with the short device path OVMF expands itself: one media file-path node, then
 * the end node; the command line as UCS-2 without a terminator, as the EFI stub reads it.
 */
export function encodeLoadOption(option: LoadOption): Buffer {
  if (option.loader === undefined || !option.loader.startsWith('\\'))
    throw new Error(`loader must be an EFI path: ${option.loader}`);
  const pathText = Buffer.from(`${option.loader}\0`, 'utf16le');
  const node = Buffer.alloc(4);
  node.writeUInt8(MEDIA, 0);
  node.writeUInt8(MEDIA_FILEPATH, 1);
  node.writeUInt16LE(4 + pathText.length, 2);
  const devicePath = Buffer.concat([node, pathText, END_OF_PATH]);
  const head = Buffer.alloc(6);
  head.writeUInt32LE(option.active === false ? 0 : LOAD_OPTION_ACTIVE, 0);
  head.writeUInt16LE(devicePath.length, 4);
  return Buffer.concat([head, Buffer.from(`${option.label}\0`, 'utf16le'), devicePath, Buffer.from(option.args, 'utf16le')]);
}

export function decodeLoadOption(buf: Buffer): DecodedLoadOption {
  const pathLength = buf.readUInt16LE(4);
  let at = 6;
  while (at + 1 < buf.length && buf.readUInt16LE(at) !== 0) at += 2;
  const label = buf.toString('utf16le', 6, at);
  const pathStart = at + 2;
  const pathEnd = pathStart + pathLength;
  if (pathEnd > buf.length) throw new Error('load option: device path runs past the variable');
  const nodes: string[] = [];
  let loader: string | undefined;
  for (let node = pathStart; node + 4 <= pathEnd;) {
    const [type, subtype] = [buf[node]!, buf[node + 1]!];
    const length = buf.readUInt16LE(node + 2);
    if (length < 4) throw new Error(`load option: device path node of length ${length}`);
    nodes.push(`${type}/${subtype}`);
    if (type === MEDIA && subtype === MEDIA_FILEPATH) {
      // Several file-path nodes (a directory, then a file) make one path.
      const part = buf.toString('utf16le', node + 4, node + length).replace(/\0+$/, '');
      loader = loader === undefined ? part : `${loader}\\${part}`.replace(/\\\\+/g, '\\');
    }
    if (type === 0x7f && subtype === 0xff) break;
    node += length;
  }
  const optionalData = Buffer.from(buf.subarray(pathEnd));
  const text = loader !== undefined && optionalData.length % 2 === 0;
  return {
    label,
    loader,
    args: text ? optionalData.toString('utf16le').replace(/\0+$/, '') : '',
    active: (buf.readUInt32LE(0) & LOAD_OPTION_ACTIVE) !== 0,
    nodes,
    optionalData,
  };
}

const bootNumber = (num: string) => {
  if (!/^[0-9A-Fa-f]{4}$/.test(num)) throw new Error(`not a boot number: ${num}`);
  return num.toUpperCase();
};

/** BootOrder's data: u16 little-endian boot numbers. */
export function encodeBootOrder(order: string[]): Buffer {
  const buf = Buffer.alloc(order.length * 2);
  order.forEach((num, i) => buf.writeUInt16LE(parseInt(bootNumber(num), 16), i * 2));
  return buf;
}

export function decodeBootOrder(buf: Buffer): string[] {
  const order: string[] = [];
  for (let at = 0; at + 1 < buf.length; at += 2) order.push(buf.readUInt16LE(at).toString(16).toUpperCase().padStart(4, '0'));
  return order;
}

// The bridge to test/fakes/efibootmgr's state file.

/** One entry of the fake's state (the fake also writes `disk` and `part`, the ESP it was told). */
export interface FakeEntry {
  label: string;
  /** The EFI path; '' for the firmware's own entries (UiApp, the shell, whole disks): no file-path node. */
  loader: string;
  args: string;
  active?: boolean;
  disk?: string;
  part?: number;
}

/** The JSON the efibootmgr fake keeps in EFIBOOTMGR_FAKE_STATE. */
export interface FakeState {
  bootCurrent: string;
  timeout: number;
  bootOrder: string[];
  entries: Record<string, FakeEntry>;
  bootNext?: string;
}

const BOOT_VARIABLE = /^Boot([0-9A-F]{4})$/;

/**
 * Writes the fake's state into a vars file so the firmware boots by it: each entry with a loader as
 * Boot####, BootOrder, and BootNext when set (deleted when not). The firmware's own entries (loader
 * '', or not in the state at all) are left as the file has them; an entry with a file path that
 * the state does not have is deleted (efibootmgr -B).
 * No other variable is touched.
 */
export function writeFakeStateToVars(state: FakeState, varsFile: string): void {
  const set = (store: Store, name: string, data: Buffer) =>
    setIn(store, { name, guid: EFI_GLOBAL_VARIABLE, attributes: NV_BS_RT, data });
  updateStore(varsFile, (store) => {
    for (const variable of liveRecords(store)) {
      const num = BOOT_VARIABLE.exec(variable.name)?.[1];
      if (!num || variable.guid !== EFI_GLOBAL_VARIABLE || state.entries[num]) continue;
      if (decodeLoadOption(variable.data).loader !== undefined) markDeleted(store, variable);
    }
    for (const [num, entry] of Object.entries(state.entries)) {
      if (!entry.loader) continue;
      const { label, loader, args } = entry;
      set(store, `Boot${bootNumber(num)}`, encodeLoadOption({ label, loader, args, active: entry.active !== false }));
    }
    if (state.bootOrder.length === 0) markDeleted(store, { name: 'BootOrder', guid: EFI_GLOBAL_VARIABLE });
    else set(store, 'BootOrder', encodeBootOrder(state.bootOrder));
    if (state.bootNext === undefined) markDeleted(store, { name: 'BootNext', guid: EFI_GLOBAL_VARIABLE });
    else set(store, 'BootNext', encodeBootOrder([state.bootNext]));
  });
}

/**
 * The fake's state as the vars file has it: every Boot#### (the firmware's own with loader '', which
 * the fake shows as `File()` and kinstall's parseBootState reads as no loader), BootOrder, BootNext
 * when present, Timeout. BootCurrent is not stored in the file (the firmware sets it volatile at each
 * boot), nor are the fake's disk and part: both come from `base` (a test knows which entry booted
 * last from the serial log), else the fake's defaults:
 *
 *   readVarsToFakeState(vars, { ...stateBefore, bootCurrent: run.boots.at(-1)?.bootOption });
 */
export function readVarsToFakeState(varsFile: string, base?: Partial<FakeState>): FakeState {
  const variables = readVariables(varsFile).filter((v) => v.guid === EFI_GLOBAL_VARIABLE);
  const find = (name: string) => variables.find((v) => v.name === name)?.data;
  const entries: Record<string, FakeEntry> = {};
  const byNumber = (a: EfiVariable, b: EfiVariable) => a.name.localeCompare(b.name);
  for (const variable of [...variables].sort(byNumber)) {
    const num = BOOT_VARIABLE.exec(variable.name)?.[1];
    if (!num) continue;
    const option = decodeLoadOption(variable.data);
    const known = base?.entries?.[num];
    entries[num] = {
      label: option.label,
      active: option.active,
      disk: known?.disk ?? '/dev/sda',
      part: known?.part ?? 1,
      loader: option.loader ?? '',
      args: option.args,
    };
  }
  const bootNext = find('BootNext');
  const timeout = find('Timeout');
  return {
    bootCurrent: base?.bootCurrent ?? '0000',
    timeout: timeout && timeout.length >= 2 ? timeout.readUInt16LE(0) : (base?.timeout ?? 1),
    bootOrder: decodeBootOrder(find('BootOrder') ?? Buffer.alloc(0)),
    entries,
    ...(bootNext ? { bootNext: decodeBootOrder(bootNext)[0] } : {}),
  };
}
