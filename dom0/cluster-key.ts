/**
 * The cluster key: a long-lived secret shared by a user's dom0 services (dom0/service.ts) and
 * launchers, the way munge shares one key across a Slurm cluster. A launcher proves it to each
 * service; each job's secret is derived from it and the job id, so no job secret ever crosses
 * the network and a service can run many jobs, each with its own secret.
 *
 * The file holds one line, the 32-byte key in 43 base64url characters; it must be a regular
 * file owned by the user, readable by no one else (mode 0600), as ssh insists for its keys.
 * Default path: $SFMPI_CLUSTER_KEY, else ~/.sfmpi/cluster.key (a home directory shared by the
 * hosts, or the same file copied to each).
 */
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeSecret, encodeSecret, newSecret } from './handshake.js';

/** A missing, unsafe or malformed cluster key file (the message names the file). */
export class ClusterKeyError extends Error {
  readonly code = 'ERR_CLUSTER_KEY';
}

/** Where the key is read from when no path is given. */
export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.SFMPI_CLUSTER_KEY || path.join(os.homedir(), '.sfmpi', 'cluster.key');
}

/** Reads the cluster key, refusing a file others can read or one that is not the user's. */
export function readClusterKey(file = defaultKeyFile()): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new ClusterKeyError(`cluster key ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (make one with `sfmpi-dom0 keygen`)' : (e as Error).message}`);
  }
  if (!st.isFile()) throw new ClusterKeyError(`cluster key ${file}: not a regular file`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid())
    throw new ClusterKeyError(`cluster key ${file}: owned by uid ${st.uid}, not by this user (uid ${process.getuid()})`);
  if ((st.mode & 0o077) !== 0)
    throw new ClusterKeyError(`cluster key ${file}: readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 ${file}`);
  try {
    return decodeSecret(fs.readFileSync(file, 'latin1').split('\n')[0], `cluster key ${file}`);
  } catch (e) {
    throw new ClusterKeyError((e as Error).message);
  }
}

/** Makes a new key file (mode 0600, its folder 0700); refuses to overwrite one unless `force`. */
export function makeClusterKey(file = defaultKeyFile(), force = false): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const flags = force ? 'w' : 'wx';
  try {
    fs.writeFileSync(file, `${encodeSecret(newSecret())}\n`, { mode: 0o600, flag: flags });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ClusterKeyError(`cluster key ${file} exists already (--force replaces it)`);
    throw e;
  }
  fs.chmodSync(file, 0o600);
}

/** A job's secret: HMAC-SHA256 of the job id under the cluster key (both ends derive it). */
export function jobSecret(clusterKey: Buffer, jobId: string): Buffer {
  return createHmac('sha256', clusterKey).update('sfmpi job secret\0').update(jobId).digest();
}
