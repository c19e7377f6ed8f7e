// Secure Boot signing: each file a layout's plan marks `verifiedByFirmware` (an EFI-stub kernel, a
// UKI) is signed with sbsign as a copy in the staging area, checked with sbverify, and the plan
// places the copy. The neutral location's files are never signed in place, and the transaction
// stays the only writer to the boot dir and the ESP.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { errorMessage, KinstallError } from '../errors.js';
import { isFile, pathExists } from '../fs.js';
import { locateArgument } from '../paths.js';
import type { Plan } from '../types.js';
import { missingTools } from './preflight.js';

/** The key and certificate as sbsign takes them. */
interface SigningKey {
  /** A key file, or a PKCS#11 URI handed to sbsign's pkcs11 engine as it is. */
  key: string;
  cert: string;
  pkcs11: boolean;
}

const isPkcs11Uri = (key: string) => key.startsWith('pkcs11:');

/** Signing is on when secureboot.key/cert (or SECUREBOOT_SIGN_KEY/CERT) are set; settings checked that both are. */
export const signingConfigured = (ctx: Context): boolean =>
  ctx.settings.secureBootKey !== undefined && ctx.settings.secureBootCert !== undefined;

/** A key or certificate file by the rule for path arguments (inside --root when there, else the host). */
async function locate(ctx: Context, given: string): Promise<string> {
  const { found, tried } = await locateArgument(ctx.paths, path.resolve(ctx.request.cwd, given));
  return found ?? tried[tried.length - 1] ?? given;
}

async function signingKey(ctx: Context): Promise<SigningKey> {
  const { secureBootKey: key = '', secureBootCert: cert = '' } = ctx.settings;
  const pkcs11 = isPkcs11Uri(key);
  return { key: pkcs11 ? key : await locate(ctx, key), cert: await locate(ctx, cert), pkcs11 };
}

const settingName = { key: 'secureboot.key (SECUREBOOT_SIGN_KEY)', certificate: 'secureboot.cert (SECUREBOOT_SIGN_CERT)' };

/** Why a PEM file cannot serve sbsign (missing, unreadable, not the expected PEM block), or undefined. */
async function pemProblem(file: string, what: 'key' | 'certificate', block: RegExp): Promise<string | undefined> {
  if (!(await isFile(file))) {
    return `the Secure Boot ${what} ${file} ${(await pathExists(file)) ? 'is not a file' : 'does not exist'} (check ${settingName[what]})`;
  }
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch (error) {
    return `the Secure Boot ${what} ${file} cannot be read: ${errorMessage(error)}`;
  }
  if (!block.test(text)) return `the Secure Boot ${what} ${file} is not a PEM ${what} (check ${settingName[what]})`;
  if (what === 'key' && /ENCRYPTED/.test(text)) {
    return `the Secure Boot key ${file} is protected by a passphrase, which sbsign cannot be given unattended: decrypt a copy readable by root only (openssl rsa -in KEY -out KEY.plain), or use a PKCS#11 URI`;
  }
  return undefined;
}

/** Preflight: the tools are installed and the key and certificate can be read. Nothing when signing is off. */
export async function signingProblems(ctx: Context): Promise<string[]> {
  if (!signingConfigured(ctx)) return [];
  const { key, cert, pkcs11 } = await signingKey(ctx);
  const problems = await missingTools(ctx, ['sbsign', 'sbverify']);
  if (problems.length > 0) problems[0] = `${problems[0] ?? ''}: Secure Boot signing needs sbsigntool`;
  const keyProblem = pkcs11 ? undefined : await pemProblem(key, 'key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  const certProblem = await pemProblem(cert, 'certificate', /-----BEGIN CERTIFICATE-----/);
  return [...problems, ...[keyProblem, certProblem].filter((p): p is string => p !== undefined)];
}

/** sbverify --cert: the file carries a signature by this certificate's key. */
async function signedBy(ctx: Context, file: string, cert: string): Promise<boolean> {
  const result = await ctx.exec.run('sbverify', ['--cert', cert, file], { reject: false, readOnly: true });
  return result.exitCode === 0;
}

/**
 * The sign step: each firmware-verified file of the plan signed in the staging area (an image
 * already signed by this key is taken as it is), verified, and placed instead of the unsigned one.
 */
export async function signPlannedFiles(state: { ctx: Context; plan: Plan; stagingArea: string }): Promise<void> {
  const { ctx, plan, stagingArea } = state;
  const { key, cert, pkcs11 } = await signingKey(ctx);
  const signedDir = path.join(stagingArea, 'signed');
  const place = [];
  for (const [index, item] of plan.place.entries()) {
    if (!item.verifiedByFirmware) {
      place.push(item);
    } else if (ctx.request.dryRun) {
      ctx.log.info(`would sign ${item.from} with ${cert} for ${item.to}`);
      place.push(item);
    } else if (await signedBy(ctx, item.from, cert)) {
      ctx.log.info(`${item.from} is signed by ${cert} already: not signed again`);
      place.push(item);
    } else {
      const out = path.join(signedDir, `${index}-${path.basename(item.to)}`);
      await mkdir(signedDir, { recursive: true, mode: 0o700 });
      await ctx.exec.run('sbsign', [
        ...(pkcs11 ? ['--engine', 'pkcs11'] : []),
        '--key',
        key,
        '--cert',
        cert,
        '--output',
        out,
        item.from,
      ]);
      if (!(await signedBy(ctx, out, cert))) {
        throw new KinstallError(
          'ETOOL',
          { tool: 'sbverify', why: `the signed copy of ${item.from} does not verify against ${cert}` },
          ['the key and the certificate do not belong together: check secureboot.key and secureboot.cert'],
        );
      }
      ctx.log.info(`signed ${path.basename(item.to)} for Secure Boot with ${cert}`);
      place.push({ ...item, from: out });
    }
  }
  state.plan = { ...plan, place };
}
