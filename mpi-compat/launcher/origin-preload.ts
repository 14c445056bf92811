/**
 * Preloaded into a Node origin started by sfmpirun (with --import; it registers no loader hooks,
 * which would run on a thread a clone does not have): tie the origin's life to the launcher's.
 */
import { native } from '../../native/addon.js';

const launcher = Number(process.env.SFMPI_LAUNCHER_PID);
if (Number.isInteger(launcher) && launcher > 0) native.dieWithParent(launcher);
// The control fd and the ranks' stdio fds must not leak into programs the ranks spawn.
for (const fd of [process.env.SFMPI_CONTROL_FD, ...(process.env.SFMPI_STDIO_FDS ?? '').split(',')]) {
  const n = Number(fd);
  if (fd && Number.isInteger(n) && n > 2) native.setCloexec(n, true);
}
