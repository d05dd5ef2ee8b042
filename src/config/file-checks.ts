/** Checks of the files the configuration names: they exist, and hold keys and certificates that can be used. */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';
import { readConfigFile } from './config-files.js';

/** Reads a file named by the configuration, or says in a few words why it cannot. */
export function readNamedFile(path: string): { content: Buffer } | { problem: string } {
  try {
    return { content: readConfigFile(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOTFILE' ? 'not a regular file' : code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code) };
  }
}

/** Checks that the TLS files exist, hold PEM a TLS server can use, and belong together. */
export function checkTlsFiles(certPath: string | null, keyPath: string | null): void {
  const files = { cert: null as Buffer | null, key: null as Buffer | null };
  for (const [which, env, path] of [
    ['cert', 'WS_SSL_CERT', certPath],
    ['key', 'WS_SSL_KEY', keyPath],
  ] as const) {
    if (path === null) throw new ConfigError(`${env} (ssl.${which}): required when WS_SSL_ENABLED is true`);
    const read = readNamedFile(path);
    if ('problem' in read) throw new ConfigError(`${env} (ssl.${which}): cannot read '${path}': ${read.problem}`);
    files[which] = read.content;
  }
  try {
    new X509Certificate(files.cert as Buffer);
  } catch {
    throw new ConfigError(`WS_SSL_CERT (ssl.cert): '${certPath}' is not a PEM certificate`);
  }
  try {
    createPrivateKey(files.key as Buffer);
  } catch {
    throw new ConfigError(`WS_SSL_KEY (ssl.key): '${keyPath}' is not a PEM private key (or it is encrypted)`);
  }
  try {
    createSecureContext({ cert: files.cert as Buffer, key: files.key as Buffer });
  } catch (error) {
    throw new ConfigError(`WS_SSL_CERT / WS_SSL_KEY (ssl.cert / ssl.key): the key does not fit the certificate (${(error as Error).message})`);
  }
}

export function checkPublicKey(path: string): void {
  const read = readNamedFile(path);
  if ('problem' in read) throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): cannot read '${path}': ${read.problem}`);
  let key: KeyObject;
  try {
    key = createPublicKey(read.content);
  } catch {
    throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): '${path}' is not a PEM public key`);
  }
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  const problem =
    type === 'rsa' || type === 'rsa-pss'
      ? (details.modulusLength ?? 0) < 2048
        ? `an RSA key of ${details.modulusLength ?? 0} bits; at least 2048 are needed`
        : null
      : type === 'ec'
        ? ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '')
          ? null
          : `an EC key on ${details.namedCurve ?? 'an unknown curve'}; P-256, P-384 or P-521 is needed`
        : type === 'ed25519'
          ? null
          : `a ${type} key; RSA, EC (P-256/384/521) or Ed25519 is needed`;
  if (problem !== null) throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): '${path}' holds ${problem}`);
}
